// Package ffmpeg runs ffmpeg, contained, for the thumbnails package: a video's
// first frame as PNG, an audio's samples as PCM. Each run is a process of its
// own (a process group, killed whole), given no environment, its input on
// stdin and no protocol but the pipe, one thread, and resource limits set
// before it has read a byte of the media: address space, CPU time, no files
// written, few descriptors, no core dumps. A wall-clock timeout kills it.
package ffmpeg

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// Runner runs ffmpeg within the limits of its config. It is safe for
// concurrent use; the thumbnails.Generator's decode slots bound the runs.
type Runner struct {
	path string
	cfg  config.FFmpeg
}

// New finds cfg.Path (in PATH when it is a bare name); an error means video
// and audio cannot be thumbnailed.
func New(cfg config.FFmpeg) (*Runner, error) {
	path, err := exec.LookPath(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("ffmpeg (thumbnails.ffmpeg.path %q): %w", cfg.Path, err)
	}
	return &Runner{path: path, cfg: cfg}, nil
}

// Version is the first line ffmpeg -version prints.
func (r *Runner) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, r.path, "-version").Output()
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line, nil
}

// demuxer is the ffmpeg input format of a sniffed type: named, so that
// ffmpeg never probes its way into a playlist or concat demuxer.
func demuxer(format string) (string, error) {
	switch format {
	case "video/mp4", "video/quicktime":
		return "mov", nil
	case "video/webm", "video/x-matroska":
		return "matroska", nil
	case "audio/mpeg":
		return "mp3", nil
	case "audio/ogg":
		return "ogg", nil
	case "audio/wav":
		return "wav", nil
	case "audio/flac":
		return "flac", nil
	}
	return "", fmt.Errorf("%s: %w", format, thumbnails.ErrUnsupported)
}

// Frame returns a PNG of the first video frame of input.
func (r *Runner) Frame(ctx context.Context, format string, input func(io.Writer) error, maxBytes int64) ([]byte, error) {
	dmx, err := demuxer(format)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = r.run(ctx, []string{"-f", dmx, "-i", "pipe:0", "-map", "0:v:0", "-frames:v", "1",
		"-an", "-sn", "-dn", "-f", "image2pipe", "-c:v", "png", "pipe:1"}, input, func(stdout io.Reader) error {
		n, err := io.Copy(&out, io.LimitReader(stdout, maxBytes+1))
		if err == nil && n > maxBytes {
			return fmt.Errorf("ffmpeg wrote more than %d bytes: %w", maxBytes, thumbnails.ErrCorrupt)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("no video frame: %w", thumbnails.ErrCorrupt)
	}
	return out.Bytes(), nil
}

// Samples decodes the first maxSeconds of input's first audio stream into
// mono signed 16-bit samples at rate.
func (r *Runner) Samples(ctx context.Context, format string, input func(io.Writer) error, rate, maxSeconds int, fn func([]int16)) error {
	dmx, err := demuxer(format)
	if err != nil {
		return err
	}
	return r.run(ctx, []string{"-f", dmx, "-i", "pipe:0", "-map", "0:a:0", "-vn", "-sn", "-dn",
		"-t", fmt.Sprint(maxSeconds), "-ac", "1", "-ar", fmt.Sprint(rate), "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"},
		input, func(stdout io.Reader) error {
			buf := make([]byte, 16<<10)
			samples := make([]int16, len(buf)/2)
			var carry []byte // an odd byte left from the last read
			for {
				n, err := stdout.Read(buf[len(carry):])
				copy(buf, carry)
				n += len(carry)
				whole := n &^ 1
				for i := 0; i < whole; i += 2 {
					samples[i/2] = int16(binary.LittleEndian.Uint16(buf[i:]))
				}
				if whole > 0 {
					fn(samples[:whole/2])
				}
				carry = append(carry[:0], buf[whole:n]...)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
			}
		})
}

// stderrLimit bounds what is kept of ffmpeg's messages, for the error.
const stderrLimit = 4 << 10

// run runs ffmpeg with args after the common ones, feeding it input and
// handing its stdout to output; it returns once the process has exited and
// every goroutine it started has returned.
func (r *Runner) run(ctx context.Context, args []string, input func(io.Writer) error, output func(io.Reader) error) error {
	timeout := time.Duration(r.cfg.TimeoutSeconds) * time.Second
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	common := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-protocol_whitelist", "pipe", "-filter_threads", "1"}
	cmd := exec.Command(r.path, append(common, args...)...)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &limitedBuffer{limit: stderrLimit}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	pid := cmd.Process.Pid
	kill := func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }
	if err := r.limit(pid); err != nil {
		kill()
		_ = cmd.Wait()
		return fmt.Errorf("limit ffmpeg: %w", err)
	}
	// The limits are set: only now does the media reach it.
	var wg sync.WaitGroup
	var inputErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		inputErr = input(stdin)
		stdin.Close()
	}()
	var outErr error
	go func() {
		defer wg.Done()
		outErr = output(stdout)
		_, _ = io.Copy(io.Discard, stdout) // let it finish writing
	}()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			kill()
		case <-stopped:
		}
	}()
	wg.Wait()
	waitErr := cmd.Wait()
	close(stopped)
	switch {
	case context.Cause(ctx) == errTimeout:
		return fmt.Errorf("ffmpeg took longer than %s: %w", timeout, thumbnails.ErrTooLarge)
	case ctx.Err() != nil:
		return ctx.Err()
	case outErr != nil:
		return outErr
	case waitErr != nil:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() &&
			(ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL) {
			return fmt.Errorf("ffmpeg stopped by its CPU limit (%ds): %w", r.cfg.CPUSeconds, thumbnails.ErrTooLarge)
		}
		if msg := stderr.String(); strings.Contains(msg, "Cannot allocate memory") {
			return fmt.Errorf("ffmpeg ran out of its %d bytes: %w", r.cfg.MemoryBytes, thumbnails.ErrTooLarge)
		}
		return fmt.Errorf("ffmpeg: %s (%v): %w", stderr.firstLine(), waitErr, thumbnails.ErrCorrupt)
	case inputErr != nil && !errors.Is(inputErr, syscall.EPIPE):
		return inputErr // reading the media failed (the datastore)
	}
	return nil
}

var errTimeout = errors.New("ffmpeg timed out")

// limit sets the resource limits of process pid.
func (r *Runner) limit(pid int) error {
	cpu := uint64(r.cfg.CPUSeconds)
	for _, l := range []struct {
		resource int
		value    uint64
	}{
		{unix.RLIMIT_AS, uint64(r.cfg.MemoryBytes)},
		{unix.RLIMIT_CPU, cpu},
		{unix.RLIMIT_FSIZE, 0}, // writes no file
		{unix.RLIMIT_NOFILE, 64},
		{unix.RLIMIT_CORE, 0},
	} {
		if err := unix.Prlimit(pid, l.resource, &unix.Rlimit{Cur: l.value, Max: l.value}, nil); err != nil {
			return fmt.Errorf("resource %d: %w", l.resource, err)
		}
	}
	return nil
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *limitedBuffer) firstLine() string {
	line, _, _ := strings.Cut(strings.TrimSpace(b.String()), "\n")
	return line
}
