// Command media-repo-bench measures the real media-repo binary under load with
// wrk, next to a bare net/http reference measured in the same run, and prints
// a Markdown table for docs/benchmarks.md. Everything runs on 127.0.0.1.
//
//	go run ./cmd/media-repo-bench [-duration 10s] [-connections 16] [-baseline <git revision>]
//	go run ./cmd/media-repo-bench -thumbnails [-rounds 5] [-baseline <git revision>]
//
// With -baseline, the build of an earlier revision runs beside the current one
// and both are measured in the same interleaved rounds. -thumbnails measures
// the first thumbnail after an upload instead (thumbs.go).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

const token = "bench-token"

func main() {
	bare := flag.String("bare-serve", "", "internal: serve this file with bare http.ServeContent")
	bareUpload := flag.String("bare-upload", "", "internal: accept uploads into this directory with a bare handler")
	addr := flag.String("addr", "", "internal: listen address for -bare-serve/-bare-upload")
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := flag.Int("connections", 16, "wrk connections for downloads")
	rounds := flag.Int("rounds", 3, "download runs per server, alternating; the median is reported")
	pin := flag.Bool("pin", false, "pin servers to CPU 0 and wrk to CPU 1 (compares CPU cost per request)")
	baseline := flag.String("baseline", "", "also measure the download of this git revision's build, interleaved")
	thumbs := flag.Bool("thumbnails", false, "measure the first thumbnail after an upload, and the CPU and memory of thumbnailing")
	flag.Parse()
	switch {
	case *bare != "":
		serveBare(*addr, *bare)
		return
	case *bareUpload != "":
		serveBareUpload(*addr, *bareUpload)
		return
	}
	b := bench{duration: *duration, pin: *pin}
	run := func() error { return b.run(*conns, *rounds, *baseline) }
	if *thumbs {
		run = func() error { return b.thumbnails(*rounds, *baseline) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "media-repo-bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	duration time.Duration
	pin      bool
	dir      string
	fakeURL  string
}

// server is a process under load and how to ask it for the 10 KiB download.
type server struct {
	name    string
	cmd     *exec.Cmd
	url     string   // the download
	headers []string // wrk -H arguments
	base    string   // the server's root URL
	blob    string   // the datastore file holding the download (media-repo only)
}

// setUp makes the run's directory and fake homeserver; the returned func
// removes both.
func (b *bench) setUp() (func(), error) {
	dir, err := os.MkdirTemp("", "media-repo-bench-")
	if err != nil {
		return nil, err
	}
	b.dir = dir
	fake := homeservertest.Start(map[string]homeservertest.User{token: {UserID: "@bench:example.org"}})
	b.fakeURL = fake.URL
	return func() { fake.Close(); os.RemoveAll(dir) }, nil
}

func (b *bench) run(conns, rounds int, baseline string) error {
	tearDown, err := b.setUp()
	if err != nil {
		return err
	}
	defer tearDown()

	small := make([]byte, 10<<10)
	rand.Read(small)
	current, err := b.startRepo("media-repo", ".", "", small)
	if err != nil {
		return err
	}
	defer stop(current.cmd)
	servers := []*server{current}
	if baseline != "" {
		src, remove, err := worktree(b.dir, baseline)
		if err != nil {
			return err
		}
		defer remove()
		old, err := b.startRepo("media-repo at "+baseline, src, "", small)
		if err != nil {
			return err
		}
		defer stop(old.cmd)
		servers = append(servers, old)
	}
	bareProc, err := b.startBare(current.blob)
	if err != nil {
		return err
	}
	defer stop(bareProc.cmd)
	servers = append(servers, bareProc)

	if err := b.downloads(servers, conns, rounds); err != nil {
		return err
	}
	return b.uploads(current)
}

// startRepo builds the media-repo in the module at src, starts it on its own
// database and datastore with extra appended to its config, and uploads body
// (if any) for the download runs.
func (b *bench) startRepo(name, src, extra string, body []byte) (*server, error) {
	dir, err := os.MkdirTemp(b.dir, "repo-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "media-repo")
	build := exec.Command("go", "build", "-tags", "nodynamic", "-o", bin, "./cmd/media-repo")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %v\n%s", name, err, out)
	}
	port := freePort()
	cfg := fmt.Sprintf(`repo: {bindAddress: 127.0.0.1, port: %d, logLevel: info}
database: {sqlite: %q}
homeservers: [{name: example.org, csApi: %q}]
datastores: [{type: file, id: local, forKinds: [all], opts: {path: %q}}]
uploads: {maxBytes: 1073741824}
# The limiter runs (its cost is measured) but never refuses.
rateLimit: {enabled: true, requestsPerSecond: 1e9, burst: 1000000000, buckets: {downloads: {capacityBytes: 1000000000000000, drainBytesPerMinute: 1000000000000}}}
`, port, filepath.Join(dir, "m.db"), b.fakeURL, filepath.Join(dir, "media")) + extra
	cfgPath := filepath.Join(dir, "media-repo.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "media-repo.log"))
	if err != nil {
		return nil, err
	}
	cmd, err := b.start(logFile, bin, "-config", cfgPath)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHealthy(base); err != nil {
		stop(cmd)
		return nil, err
	}
	if body == nil {
		return &server{name: name, cmd: cmd, base: base}, nil
	}
	id, err := upload(base, body)
	if err != nil {
		stop(cmd)
		return nil, err
	}
	return &server{
		name: name, cmd: cmd, base: base,
		url:     base + "/_matrix/client/v1/media/download/example.org/" + id,
		headers: []string{"-H", "Authorization: Bearer " + token, "-H", "Host: example.org"},
		blob:    findBlob(filepath.Join(dir, "media"), body),
	}, nil
}

// worktree checks revision out into a directory under dir, for building;
// remove takes it away again.
func worktree(dir, revision string) (path string, remove func(), err error) {
	path = filepath.Join(dir, "baseline")
	if out, err := exec.Command("git", "worktree", "add", "--detach", path, revision).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("git worktree add %s: %v\n%s", revision, err, out)
	}
	return path, func() { exec.Command("git", "worktree", "remove", "--force", path).Run() }, nil
}

// startBare starts the reference server for file.
func (b *bench) startBare(file string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port := freePort()
	cmd, err := b.start(io.Discard, self, "-bare-serve", file, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHealthy(base); err != nil {
		stop(cmd)
		return nil, err
	}
	return &server{name: "bare http.ServeContent, same file", cmd: cmd, base: base, url: base + "/file"}, nil
}

// downloads runs the 10 KiB download against every server in turn, rounds
// times, and prints the medians; the last server is the bare reference.
func (b *bench) downloads(servers []*server, conns, rounds int) error {
	rps := make([][]float64, len(servers))
	cpu := make([][]float64, len(servers))
	for range rounds {
		for i, s := range servers {
			r, c, err := b.measure(s.cmd, conns, s.url, "", s.headers...)
			if err != nil {
				return err
			}
			rps[i], cpu[i] = append(rps[i], r), append(cpu[i], c)
		}
	}
	fmt.Printf("| what | req/s | MiB/s | server CPU per request | peak RSS of the server |\n| --- | ---: | ---: | ---: | ---: |\n")
	for i, s := range servers {
		what := s.name + ", authenticated 10 KiB download"
		if i == len(servers)-1 {
			what = s.name
		}
		r := median(rps[i])
		fmt.Printf("| %s, %d connections (runs: %s) | %.0f | %.1f | %.1f µs | %s |\n",
			what, conns, runs(rps[i]), r, r*10/1024, median(cpu[i]), peakRSS(s.cmd))
	}
	bare := len(servers) - 1
	for i := range servers[:bare] {
		fmt.Printf("| %s / bare | %.0f %% of req/s | | %.0f %% of req/s per CPU second | |\n",
			servers[i].name, 100*median(rps[i])/median(rps[bare]), 100*median(cpu[bare])/median(cpu[i]))
	}
	return nil
}

// uploads measures 20 MiB bodies at 4 connections, then 200 MiB to show
// memory stays flat, against the bare upload handler.
func (b *bench) uploads(repo *server) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bareUpPort := freePort()
	bareUp, err := b.start(io.Discard, self, "-bare-upload", filepath.Join(b.dir, "bare-up"), "-addr", fmt.Sprintf("127.0.0.1:%d", bareUpPort))
	if err != nil {
		return err
	}
	defer stop(bareUp)
	bareUpBase := fmt.Sprintf("http://127.0.0.1:%d", bareUpPort)
	if err := waitHealthy(bareUpBase); err != nil {
		return err
	}
	for _, mib := range []int{20, 200} {
		script, err := uploadScript(b.dir, mib)
		if err != nil {
			return err
		}
		rps, err := b.wrk(4, repo.base+"/_matrix/media/v3/upload?filename=big.bin", script, "-H", "Host: example.org")
		if err != nil {
			return err
		}
		fmt.Printf("| media-repo, %d MiB uploads, 4 connections | %.2f | %.0f | | %s |\n", mib, rps, rps*float64(mib), peakRSS(repo.cmd))
		rps, err = b.wrk(4, bareUpBase+"/upload", script)
		if err != nil {
			return err
		}
		fmt.Printf("| bare handler (copy to temp file, fsync, rename), %d MiB, 4 connections | %.2f | %.0f | | %s |\n", mib, rps, rps*float64(mib), peakRSS(bareUp))
	}
	return nil
}

// measure runs wrk against a server process and returns requests per second
// and the CPU time the server spent per request. CPU time does not count time
// stolen by other tenants, so it is the steadier figure on a shared machine.
func (b *bench) measure(server *exec.Cmd, conns int, url, script string, extra ...string) (rps, cpuMicros float64, err error) {
	before := cpuTime(server)
	rps, err = b.wrk(conns, url, script, extra...)
	if err != nil {
		return 0, 0, err
	}
	used := cpuTime(server) - before
	return rps, float64(used.Microseconds()) / (rps * b.duration.Seconds()), nil
}

// cpuTime is the user+system CPU time of a process (and its threads) so far.
func cpuTime(cmd *exec.Cmd) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" closing the command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// wrk runs wrk and returns requests per second.
func (b *bench) wrk(conns int, url, script string, extra ...string) (float64, error) {
	threads := "2"
	if b.pin {
		threads = "1"
	}
	args := []string{"wrk", "-t", threads, "-c", strconv.Itoa(conns), "-d", b.duration.String()}
	if b.pin {
		// wrk gets core 1, the servers core 0 (see start): the figures then
		// compare CPU cost per request rather than how a core is shared with wrk.
		args = append([]string{"taskset", "-c", "1"}, args...)
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	args = append(args, extra...)
	args = append(args, url)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindSubmatch(out); m != nil {
		return 0, fmt.Errorf("wrk saw %s failed responses for %s:\n%s", m[1], url, out)
	}
	m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func uploadScript(dir string, mib int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("upload-%d.lua", mib))
	lua := fmt.Sprintf(`wrk.method = "POST"
wrk.body = string.rep("m", %d * 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Authorization"] = "Bearer %s"
`, mib, token)
	return path, os.WriteFile(path, []byte(lua), 0o600)
}

func upload(base string, body []byte) (string, error) {
	req, _ := http.NewRequest("POST", base+"/_matrix/media/v3/upload", bytes.NewReader(body))
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("upload: status %d: %v", resp.StatusCode, err)
	}
	return strings.TrimPrefix(out.ContentURI, "mxc://example.org/"), nil
}

// findBlob returns the path of the datastore file holding content.
func findBlob(root string, content []byte) string {
	var found string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Size() == int64(len(content)) {
			if b, _ := os.ReadFile(p); bytes.Equal(b, content) {
				found = p
			}
		}
		return nil
	})
	return found
}

// serveBare is the reference: open the file per request, http.ServeContent, nothing else.
func serveBare(addr, file string) {
	info, err := os.Stat(file)
	if err != nil {
		panic(err)
	}
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", info.ModTime(), f)
	}))
}

// serveBareUpload is the upload reference: stream to a temp file, fsync, rename.
func serveBareUpload(addr, dir string) {
	os.MkdirAll(dir, 0o750)
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		f, err := os.CreateTemp(dir, "up-*")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, err = io.Copy(f, r.Body)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, "last"))
		}
		if err != nil {
			os.Remove(f.Name())
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write([]byte(`{"content_uri":"mxc://bare/x"}`))
	}))
}

func (b *bench) start(out io.Writer, name string, args ...string) (*exec.Cmd, error) {
	if b.pin {
		name, args = "taskset", append([]string{"-c", "0", name}, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, cmd.Start()
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func runs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, ", ")
}

func waitHealthy(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("server at " + base + " did not come up")
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// peakRSS reads the process's high-water resident set size from /proc.
func peakRSS(cmd *exec.Cmd) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return "?"
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}
