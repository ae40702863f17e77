package thumbnails_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/ffmpeg"
)

// TestFormatCosts measures, per input format, the cold thumbnail (a fresh
// process: WebAssembly modules compiled, ffmpeg started) and the process's
// peak RSS, next to a JPEG of the same picture and a process that only
// reads the file, in one run. It writes the table docs/benchmarks.md shows.
// It takes minutes (40 MP encodes): MEDIAREPO_BENCH_FORMATS=1 runs it.
//
//	MEDIAREPO_BENCH_FORMATS=1 go test -tags nodynamic -run TestFormatCosts -v -timeout 30m ./thumbnails/
func TestFormatCosts(t *testing.T) {
	if os.Getenv("MEDIAREPO_BENCH_FORMATS") == "" {
		t.Skip("a measurement, not a test: MEDIAREPO_BENCH_FORMATS=1 runs it")
	}
	dir := t.TempDir()
	ff := func(name string, args ...string) string {
		run(t, dir, "ffmpeg", append(append([]string{"-loglevel", "error", "-y"}, args...), name)...)
		return filepath.Join(dir, name)
	}
	still := func(w, h int) []string {
		return []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=s=%dx%d:d=1,format=yuv420p", w, h), "-frames:v", "1"}
	}
	type input struct{ name, path string }
	var inputs []input
	for _, mp := range []struct {
		label string
		w, h  int
	}{{"12 MP", 4000, 3000}, {"40 MP", 7680, 5200}} {
		png := ff(mp.label[:2]+".png", still(mp.w, mp.h)...)
		heic := filepath.Join(dir, mp.label[:2]+".heic")
		run(t, dir, "heif-enc", "-q", "80", "-o", heic, png)
		inputs = append(inputs,
			input{mp.label + " JPEG (reference)", ff(mp.label[:2]+".jpg", append(still(mp.w, mp.h), "-q:v", "3")...)},
			input{mp.label + " HEIC", heic},
			input{mp.label + " AVIF", ff(mp.label[:2]+".avif", append(still(mp.w, mp.h), "-c:v", "libaom-av1", "-cpu-used", "8", "-still-picture", "1")...)},
		)
	}
	anim := []string{"-f", "lavfi", "-i", "testsrc2=s=480x360:r=10:d=10"}
	inputs = append(inputs,
		input{"GIF, 100 frames of 480x360 (reference)", ff("a.gif", anim...)},
		input{"APNG, 100 frames of 480x360", ff("a.apng", append(anim, "-plays", "0", "-f", "apng")...)},
		input{"animated WebP, 100 frames of 480x360", ff("a.webp", append(anim, "-c:v", "libwebp_anim", "-loop", "0")...)},
		input{"MP4 H.264 1080p, 10 s, index at the end", ff("v.mp4", "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=10", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast")},
		input{"WebM VP9 1080p, 10 s", ff("v.webm", "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=10", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")},
		input{"MP3, 3 min", ff("a.mp3", "-f", "lavfi", "-i", "sine=f=440:d=180", "-c:a", "libmp3lame")},
		input{"Ogg Opus voice message, 3 min", ff("a.ogg", "-f", "lavfi", "-i", "sine=f=440:d=180", "-c:a", "libopus")},
	)
	measure := func(path string, thumbnail bool) (time.Duration, int64, bool) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFormatCostChild$", "-test.v")
		cmd.Env = append(os.Environ(), "MEDIAREPO_FORMAT_COST_INPUT="+path, fmt.Sprintf("MEDIAREPO_FORMAT_COST_THUMBNAIL=%t", thumbnail))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil || !bytes.Contains(out, []byte("FORMAT-COST-OK")) {
			t.Fatalf("%s: %v\n%s", path, err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return took, ru.Maxrss << 10, bytes.Contains(out, []byte("FORMAT-COST-ORIGINAL"))
	}
	fmt.Println("| input | bytes | cold thumbnail (process start to exit) | peak RSS | above reading the file alone |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, in := range inputs {
		fi, _ := os.Stat(in.path)
		_, idle, _ := measure(in.path, false)
		took, rss, original := measure(in.path, true)
		note := ""
		if original {
			note = " (made; larger than the original, which is served)"
		}
		fmt.Printf("| %s | %d | %.2f s%s | %d MiB | +%d MiB |\n", in.name, fi.Size(), took.Seconds(), note, rss>>20, (rss-idle)>>20)
	}
}

// TestFormatCostChild is TestFormatCosts's child: one cold thumbnail.
func TestFormatCostChild(t *testing.T) {
	path := os.Getenv("MEDIAREPO_FORMAT_COST_INPUT")
	if path == "" {
		t.Skip("run by TestFormatCosts")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("MEDIAREPO_FORMAT_COST_THUMBNAIL") == "true" {
		cfg := config.Default().Thumbnails
		cfg.Types = append(cfg.Types, avTypes...)
		cfg.MaxPixels, cfg.DecodeMemoryBytes, cfg.MaxSourceBytes = 50_000_000, 3<<30, 0
		r, err := ffmpeg.New(cfg.FFmpeg)
		if err != nil {
			t.Fatal(err)
		}
		spec := thumbnails.Spec{Width: 320, Height: 240, Method: config.MethodScale, Animated: true}
		_, err = thumbnails.New(cfg, thumbnails.WithAV(r)).Generate(context.Background(), bytes.NewReader(data), int64(len(data)), spec)
		if errors.Is(err, thumbnails.ErrUseOriginal) {
			fmt.Println("FORMAT-COST-ORIGINAL") // made, and larger than the original
		} else if err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("FORMAT-COST-OK")
}
