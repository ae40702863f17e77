package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/disintegration/imaging"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/thumbnailstest"
)

// mmrSizes are matrix-media-repo's six default sizes, each in both methods,
// so that every server makes the thumbnails matrix-media-repo would.
const mmrSizes = `thumbnails: {sizes: [{width: 32, height: 32}, {width: 96, height: 96}, {width: 320, height: 240}, {width: 640, height: 480}, {width: 768, height: 240}, {width: 800, height: 600}]`

// firstView is one first-thumbnail request measured right after an upload.
type firstView struct {
	name  string
	image []byte // the original; each upload appends a counter after its end
	query string
}

// thumbServer is a media-repo under the thumbnail benchmark and its figures.
type thumbServer struct {
	*server
	views   [][]time.Duration // per firstView, per round
	cpu     []time.Duration   // per uploaded photo, all pre-generated sizes
	peakRSS int64             // bytes above idle, the most over the rounds
}

// thumbnails measures, interleaved over rounds: the first thumbnail request
// right after an upload (the request a chat client makes when a picture is
// posted), the server CPU an uploaded 12 MP photo costs until its
// background thumbnails are done, and the peak memory above idle while
// thumbnailing it. The references run in the same rounds: image/jpeg (or
// image/png) decode + imaging resize + encode in this process, mediarepo's
// own generator making one size alone, and vipsthumbnail (libvips-tools) as
// a whole process, if installed.
func (b *bench) thumbnails(rounds int, baseline string) error {
	tearDown, err := b.setUp()
	if err != nil {
		return err
	}
	defer tearDown()

	var jb, pb bytes.Buffer
	if err := jpeg.Encode(&jb, thumbnailstest.PhotoLike(4000, 3000), &jpeg.Options{Quality: 90}); err != nil {
		return err
	}
	if err := png.Encode(&pb, thumbnailstest.PhotoLike(2000, 2000)); err != nil {
		return err
	}
	jpg, pngData := jb.Bytes(), pb.Bytes()
	views := []firstView{
		{"4000×3000 JPEG → 320×240 crop", jpg, "width=320&height=240&method=crop"},
		{"4000×3000 JPEG → 800×600 scale", jpg, "width=800&height=600&method=scale"},
		{"2000×2000 PNG → 320×240 crop", pngData, "width=320&height=240&method=crop"},
		{"2000×2000 PNG → 800×600 scale", pngData, "width=800&height=600&method=scale"},
	}

	type variant struct{ name, src, cfg string }
	variants := []variant{
		{"media-repo", ".", mmrSizes + "}\n"},
		{"media-repo, pregenerate all 12", ".", mmrSizes + `, pregenerate: [{width: 32, height: 32}, {width: 96, height: 96}, {width: 320, height: 240}, {width: 640, height: 480}, {width: 768, height: 240}, {width: 800, height: 600}]}` + "\n"},
	}
	if baseline != "" {
		src, remove, err := worktree(b.dir, baseline)
		if err != nil {
			return err
		}
		defer remove()
		variants = append(variants, variant{"media-repo at " + baseline, src, mmrSizes + "}\n"})
	}
	var servers []*thumbServer
	for _, v := range variants {
		s, err := b.startRepo(v.name, v.src, v.cfg, nil)
		if err != nil {
			return err
		}
		defer stop(s.cmd)
		servers = append(servers, &thumbServer{server: s, views: make([][]time.Duration, len(views))})
	}

	refs := newReferences(b.dir, jpg, pngData)
	seq := 0
	unique := func(img []byte) []byte {
		seq++
		return binary.BigEndian.AppendUint32(append([]byte(nil), img...), uint32(seq)) // after the image's end
	}
	for round := range rounds {
		fmt.Fprintf(os.Stderr, "round %d of %d\n", round+1, rounds)
		for _, s := range servers {
			if err := s.measureRound(views, unique); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if err := refs.measure(); err != nil {
			return err
		}
	}
	printThumbnails(servers, views, refs)
	return nil
}

// measureRound uploads a photo alone (its CPU until the server is idle again,
// and the peak memory above idle meanwhile), then each first view.
func (s *thumbServer) measureRound(views []firstView, unique func([]byte) []byte) error {
	if err := waitIdle(s.cmd); err != nil {
		return err
	}
	idle := rss(s.cmd, "VmRSS")
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0); err != nil {
		return err
	}
	before := cpuTime(s.cmd)
	if _, err := upload(s.base, unique(views[0].image)); err != nil {
		return err
	}
	if err := waitIdle(s.cmd); err != nil {
		return err
	}
	s.cpu = append(s.cpu, cpuTime(s.cmd)-before)
	s.peakRSS = max(s.peakRSS, rss(s.cmd, "VmHWM")-idle)

	for i, v := range views {
		if err := waitIdle(s.cmd); err != nil {
			return err
		}
		id, err := upload(s.base, unique(v.image))
		if err != nil {
			return err
		}
		start := time.Now()
		if err := get(s.base + "/_matrix/client/v1/media/thumbnail/example.org/" + id + "?" + v.query); err != nil {
			return err
		}
		s.views[i] = append(s.views[i], time.Since(start))
	}
	return nil
}

// get fetches url as the bench user and fails on anything but a 200.
func get(url string) error {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// waitIdle waits until the process has used no CPU for 300 ms (the kernel
// counts in 10 ms ticks): its background thumbnails are done.
func waitIdle(cmd *exec.Cmd) error {
	deadline := time.Now().Add(2 * time.Minute)
	last, still := cpuTime(cmd), 0
	for still < 3 {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still busy after 2 minutes", cmd.Process.Pid)
		}
		time.Sleep(100 * time.Millisecond)
		now := cpuTime(cmd)
		if now == last {
			still++
		} else {
			last, still = now, 0
		}
	}
	return nil
}

// rss reads a memory figure (VmRSS, VmHWM) of the process, in bytes.
func rss(cmd *exec.Cmd, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// references are the same-run yardsticks for the first views.
type references struct {
	jpg, png []byte
	dir      string
	vips     string // vipsthumbnail's path; empty if not installed
	gen      *thumbnails.Generator
	times    map[string][]time.Duration
}

func newReferences(dir string, jpg, pngData []byte) *references {
	r := &references{jpg: jpg, png: pngData, dir: dir, times: map[string][]time.Duration{}}
	r.vips, _ = exec.LookPath("vipsthumbnail")
	r.gen = thumbnails.New(config.Default().Thumbnails)
	os.WriteFile(filepath.Join(dir, "src.jpg"), jpg, 0o600)
	os.WriteFile(filepath.Join(dir, "src.png"), pngData, 0o600)
	return r
}

// Reference names, in the order they are printed.
const (
	refStraightJPEG = "image/jpeg decode + imaging.Fill (Lanczos) + encode, 4000×3000 → 320×240 crop, in process"
	refVipsJPEG     = "vipsthumbnail, whole process, 4000×3000 JPEG → 320×240 crop"
	refStraightPNG  = "image/png decode + imaging.Fill (Lanczos) + encode, 2000×2000 → 320×240 crop, in process"
	refAlonePNG     = "mediarepo's generator, one size alone (one decode + resize), 2000×2000 PNG → 320×240 crop, in process"
	refVipsPNG      = "vipsthumbnail, whole process, 2000×2000 PNG → 320×240 crop"
)

// measure times each reference once.
func (r *references) measure() error {
	timed := func(name string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.times[name] = append(r.times[name], time.Since(start))
		return nil
	}
	straight := func(data []byte) func() error {
		return func() error {
			img, _, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				return err
			}
			out := imaging.Fill(img, 320, 240, imaging.Center, imaging.Lanczos)
			return jpeg.Encode(io.Discard, out, &jpeg.Options{Quality: 85})
		}
	}
	if err := timed(refStraightJPEG, straight(r.jpg)); err != nil {
		return err
	}
	if err := timed(refStraightPNG, straight(r.png)); err != nil {
		return err
	}
	if err := timed(refAlonePNG, func() error {
		_, err := r.gen.Generate(context.Background(), bytes.NewReader(r.png), int64(len(r.png)), thumbnails.Spec{Width: 320, Height: 240, Method: "crop"})
		return err
	}); err != nil {
		return err
	}
	if r.vips == "" {
		return nil
	}
	vips := func(src string) func() error {
		return func() error {
			out, err := exec.Command(r.vips, filepath.Join(r.dir, src), "-s", "320x240", "-m", "centre", "-o", filepath.Join(r.dir, "out.jpg[Q=85]")).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	}
	if err := timed(refVipsJPEG, vips("src.jpg")); err != nil {
		return err
	}
	return timed(refVipsPNG, vips("src.png"))
}

// printThumbnails prints the medians as Markdown tables.
func printThumbnails(servers []*thumbServer, views []firstView, refs *references) {
	fmt.Printf("| first thumbnail request right after upload (median of runs, ms) |")
	for _, s := range servers {
		fmt.Printf(" %s |", s.name)
	}
	fmt.Printf("\n| --- |%s\n", strings.Repeat(" ---: |", len(servers)))
	for i, v := range views {
		fmt.Printf("| %s |", v.name)
		for _, s := range servers {
			fmt.Printf(" %s (%s) |", ms(medianDuration(s.views[i])), msList(s.views[i]))
		}
		fmt.Println()
	}
	fmt.Printf("| server CPU per uploaded 12 MP photo, upload and every pre-generated size |")
	for _, s := range servers {
		fmt.Printf(" %s (%s) |", ms(medianDuration(s.cpu)), msList(s.cpu))
	}
	fmt.Printf("\n| peak RSS above idle, uploading and thumbnailing the 12 MP photo (most over the runs) |")
	for _, s := range servers {
		fmt.Printf(" %.0f MiB |", float64(s.peakRSS)/(1<<20))
	}
	fmt.Printf("\n\n| reference, same run (median, ms) | time |\n| --- | ---: |\n")
	for _, name := range []string{refStraightJPEG, refVipsJPEG, refStraightPNG, refAlonePNG, refVipsPNG} {
		if t := refs.times[name]; len(t) > 0 {
			fmt.Printf("| %s | %s (%s) |\n", name, ms(medianDuration(t)), msList(t))
		}
	}
	first := medianDuration(servers[0].views[0])
	fmt.Printf("\n%s, first view of the JPEG 320×240 crop: %.0f %% of the image/jpeg + imaging path", servers[0].name,
		100*first.Seconds()/medianDuration(refs.times[refStraightJPEG]).Seconds())
	if t := refs.times[refVipsJPEG]; len(t) > 0 {
		fmt.Printf(", %.0f %% of vipsthumbnail", 100*first.Seconds()/medianDuration(t).Seconds())
	}
	fmt.Printf("; PNG 320×240 crop first view: %.2f× one decode + resize alone\n",
		medianDuration(servers[0].views[2]).Seconds()/medianDuration(refs.times[refAlonePNG]).Seconds())
}

func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 0, 64)
}

func msList(ds []time.Duration) string {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d.Microseconds()) / 1000
	}
	return runs(xs)
}
