package ffmpeg_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/ffmpeg"
)

// script writes an executable shell script standing in for ffmpeg.
func script(t *testing.T, body string) config.FFmpeg {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Thumbnails.FFmpeg
	cfg.Path = path
	return cfg
}

func input(data []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(data); return err }
}

// The process gets its limits before the media, no environment, and the
// arguments that keep it on the pipe.
func TestContained(t *testing.T) {
	// The script reads the media first: once it has any, the limits are set
	// (the process itself is started before them; nothing it does before
	// the media arrives is the media's doing).
	cfg := script(t, `IN=$(head -c 5); cat /proc/self/limits; echo "ENV=$(env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | grep -v '^IN=' | tr '\n' ' ')"; echo "ARGS=$*"; echo "STDIN=$IN"`)
	cfg.MemoryBytes, cfg.CPUSeconds = 300<<20, 7
	r, err := ffmpeg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Frame(context.Background(), "video/mp4", input([]byte("media bytes")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"Max address space         314572800            314572800",
		"Max cpu time              7                    7",
		"Max file size             0                    0",
		"Max open files            64                   64",
		"Max core file size        0                    0",
		"ENV=\n", "-protocol_whitelist pipe", "-f mov -i pipe:0", "-threads 1", "-nostdin", "STDIN=media",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ffmpeg's view lacks %q:\n%s", want, text)
		}
	}
}

// A run past its timeout is killed with everything it started, and the
// error says the media was too much (413), not that the server failed.
func TestTimeoutKillsTheGroup(t *testing.T) {
	marker := "mediarepo-ffmpeg-test-" + filepath.Base(t.TempDir())
	cfg := script(t, "sh -c 'sleep 300; : "+marker+"' &\nsleep 300\n")
	cfg.TimeoutSeconds = 1
	r, err := ffmpeg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Frame(context.Background(), "video/webm", input(nil), 1<<20)
	if !errors.Is(err, thumbnails.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("returned after %s", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", marker).Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child ffmpeg started lives on: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cancelling the request's context stops the run and says so.
func TestCancelled(t *testing.T) {
	r, err := ffmpeg.New(script(t, "sleep 300\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := r.Frame(ctx, "video/webm", input(nil), 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

func TestOutputBounded(t *testing.T) {
	r, err := ffmpeg.New(script(t, "head -c 100000 /dev/zero\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Frame(context.Background(), "video/webm", input(nil), 1000); !errors.Is(err, thumbnails.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt for output over the bound", err)
	}
}

// The real ffmpeg: a failure on bad input is ErrCorrupt with its message;
// too little memory is ErrTooLarge; an unknown format is refused unrun.
func TestRealFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg not found: run make test-deps: %v", err)
	}
	r, err := ffmpeg.New(config.Default().Thumbnails.FFmpeg)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Version(context.Background()); err != nil || !strings.HasPrefix(v, "ffmpeg version") {
		t.Errorf("Version = %q, %v", v, err)
	}
	_, err = r.Frame(context.Background(), "video/webm", input(bytes.Repeat([]byte("x"), 4096)), 1<<20)
	if !errors.Is(err, thumbnails.ErrCorrupt) {
		t.Errorf("garbage: %v, want ErrCorrupt", err)
	}
	if _, err := r.Frame(context.Background(), "image/svg+xml", input(nil), 1<<20); !errors.Is(err, thumbnails.ErrUnsupported) {
		t.Errorf("svg: %v, want ErrUnsupported", err)
	}
	cfg := config.Default().Thumbnails.FFmpeg
	cfg.MemoryBytes = 64 << 20
	small, err := ffmpeg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pcm int
	err = small.Samples(context.Background(), "audio/wav", input(wav(t)), 8000, 10, func(s []int16) { pcm += len(s) })
	if err != nil && !errors.Is(err, thumbnails.ErrTooLarge) && !errors.Is(err, thumbnails.ErrCorrupt) {
		t.Errorf("64 MiB: %v, want ErrTooLarge, ErrCorrupt or success", err)
	}
	pcm = 0
	if err := r.Samples(context.Background(), "audio/wav", input(wav(t)), 8000, 10, func(s []int16) { pcm += len(s) }); err != nil || pcm != 8000 {
		t.Errorf("1 s of wav: %d samples at 8 kHz, %v; want 8000", pcm, err)
	}
}

// wav is one second of silence at 16 kHz, as a WAV file.
func wav(t *testing.T) []byte {
	dir := t.TempDir()
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1", filepath.Join(dir, "a.wav"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "a.wav"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
