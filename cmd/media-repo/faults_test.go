//go:build faults

// The fault suite (make faults): the real binary, built with -tags faults so
// that crash points can kill it at chosen moments of an upload, against real
// parts that fail for real: SIGKILL, a PostgreSQL cluster of the suite's own
// that is stopped and started, a tmpfs datastore that fills up or is
// remounted read-only, SIGTERM with uploads in flight, clients that trickle,
// a homeserver that is down, slow, failing or rate limiting, and hostile
// images against the memory bound. Each test is a row of docs/security.md.
// It needs root (mount, and PostgreSQL's own user) and Debian's postgresql and
// libjpeg-turbo-progs packages.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
)

const faultToken = "fault-token"

// faultBinary builds media-repo with the crash points compiled in, once.
var faultBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "media-repo-faults-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "media-repo")
	out, err := exec.Command("go", "build", "-tags", "faults,nodynamic", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

// faultRepo is one media-repo process and its files, restartable.
type faultRepo struct {
	t      *testing.T
	dir    string
	media  string // the datastore directory
	cfg    string
	port   int
	cmd    *exec.Cmd
	exited chan error
	hs     *homeservertest.Server
}

// newFaultRepo writes a config (database is the database section, extra more
// YAML) and starts the process; the datastore is a directory of the test's
// unless media names one.
func newFaultRepo(t *testing.T, database, extra string, env ...string) *faultRepo {
	return newFaultRepoAt(t, "", database, extra, env...)
}

func newFaultRepoAt(t *testing.T, media, database, extra string, env ...string) *faultRepo {
	t.Helper()
	bin, err := faultBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := &faultRepo{t: t, dir: t.TempDir(), port: freePort(t)}
	r.hs = homeservertest.WhoAmI(t, map[string]homeservertest.User{faultToken: {UserID: "@fault:example.org"}})
	r.media = cmp.Or(media, filepath.Join(r.dir, "media"))
	if database == "" {
		database = fmt.Sprintf("{sqlite: %q}", filepath.Join(r.dir, "m.db"))
	}
	r.cfg = filepath.Join(r.dir, "media-repo.yaml")
	datastores := fmt.Sprintf("datastores: [{type: file, id: local, forKinds: [all], opts: {path: %q}}]", r.media)
	if strings.Contains(extra, "datastores:") {
		datastores = "" // the test brings its own
	}
	yaml := fmt.Sprintf(`
repo: {bindAddress: 127.0.0.1, port: %d, logLevel: info}
database: %s
homeservers: [{name: example.org, csApi: %q}]
%s
rateLimit: {enabled: false}
%s`, r.port, database, r.hs.URL, datastores, extra)
	if err := os.WriteFile(r.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd != nil && r.exited != nil {
			syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- media-repo log ---\n%s", tail([]byte(r.logs()), 4000))
		}
	})
	r.startWith(bin, env)
	return r
}

func (r *faultRepo) base() string { return fmt.Sprintf("http://127.0.0.1:%d", r.port) }

// restart starts the process again (after it has exited) with env.
func (r *faultRepo) restart(env ...string) {
	r.t.Helper()
	bin, _ := faultBinary()
	r.startWith(bin, env)
}

// startWith runs bin with env added and waits until it answers.
func (r *faultRepo) startWith(bin string, env []string) {
	r.t.Helper()
	cmd := exec.Command(bin, "-config", r.cfg)
	cmd.Dir = r.dir
	logFile, err := os.OpenFile(filepath.Join(r.dir, "media-repo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd, r.exited = cmd, make(chan error, 1)
	go func() { r.exited <- cmd.Wait(); logFile.Close() }()
	waitHTTP(r.t, r.base()+"/healthz", 30*time.Second)
}

// kill9 kills the process and waits for it.
func (r *faultRepo) kill9() {
	syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
	r.exited = nil
}

// waitExit waits for the process to end by itself and returns its exit code.
func (r *faultRepo) waitExit(limit time.Duration) int {
	r.t.Helper()
	select {
	case err := <-r.exited:
		r.exited = nil
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return -int(ws.Signal())
			}
			return ee.ExitCode()
		}
		return 0
	case <-time.After(limit):
		r.t.Fatalf("media-repo did not exit within %s", limit)
		return 0
	}
}

func (r *faultRepo) logs() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "media-repo.log"))
	return string(b)
}

// request sends method path with the fault token and Host example.org.
func (r *faultRepo) request(method, path string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequest(method, r.base()+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+faultToken)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// upload stores body and returns its media ID.
func (r *faultRepo) upload(body []byte) (string, int, error) {
	status, b, err := r.request("POST", "/_matrix/media/v3/upload", bytes.NewReader(body))
	if err != nil || status != 200 {
		return "", status, err
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(b, &out)
	return strings.TrimPrefix(out.ContentURI, "mxc://example.org/"), status, nil
}

// checkConsistent fails the test if a media row of the SQLite database at
// dbPath has no blob, or a blob whose SHA-256 is not the row's, and returns
// the number of rows.
func checkConsistent(t *testing.T, driver, dsn, root string) int {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT media_id, sha256, size_bytes FROM media`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, sum string
		var size int64
		if err := rows.Scan(&id, &sum, &size); err != nil {
			t.Fatal(err)
		}
		n++
		b, err := os.ReadFile(filepath.Join(root, sum[0:2], sum[2:4], sum))
		if err != nil {
			t.Errorf("row %s has no blob: %v", id, err)
			continue
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum || int64(len(b)) != size {
			t.Errorf("row %s: blob of %d bytes hashes to %x, row says %s (%d bytes)", id, len(b), got, sum, size)
		}
	}
	return n
}

func tempFiles(t *testing.T, root string) []string {
	entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFaultKillAtEveryPointOfAnUpload(t *testing.T) {
	r := newFaultRepo(t, "", "")
	if _, status, err := r.upload([]byte("before the crashes")); status != 200 {
		t.Fatalf("first upload = %d, %v", status, err)
	}
	r.kill9()
	dbPath := filepath.Join(r.dir, "m.db")
	for _, point := range []string{"upload-staged", "upload-published", "upload-stored"} {
		t.Run(point, func(t *testing.T) {
			r.restart("MEDIAREPO_CRASH_AT=" + point)
			before := checkConsistent(t, "sqlite", dbPath, r.media)
			_, _, err := r.upload([]byte("killed at " + point))
			if err == nil {
				t.Fatalf("upload answered although the process was killed at %s", point)
			}
			if code := r.waitExit(10 * time.Second); code != -int(syscall.SIGKILL) {
				t.Fatalf("exit = %d, want SIGKILL", code)
			}
			r.restart()
			after := checkConsistent(t, "sqlite", dbPath, r.media)
			wantRows := before
			if point == "upload-stored" {
				wantRows++ // committed, though never answered
			}
			if after != wantRows {
				t.Errorf("%d rows after the crash, want %d", after, wantRows)
			}
			if tmp := tempFiles(t, r.media); len(tmp) != 0 {
				t.Errorf("temp files left after restart: %v", tmp)
			}
			if _, status, err := r.upload([]byte("after " + point)); status != 200 {
				t.Errorf("upload after restart = %d, %v", status, err)
			}
			r.kill9()
		})
	}
	t.Run("mid-body, from outside", func(t *testing.T) {
		for _, after := range []int{1, 64 << 10, 1 << 20} {
			r.restart()
			pr, pw := io.Pipe()
			done := make(chan struct{})
			go func() { r.request("POST", "/_matrix/media/v3/upload", pr); close(done) }()
			pw.Write(bytes.Repeat([]byte("m"), after))
			for len(tempFiles(t, r.media)) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			r.kill9()
			pw.Close()
			<-done
			r.restart()
			checkConsistent(t, "sqlite", dbPath, r.media)
			if tmp := tempFiles(t, r.media); len(tmp) != 0 {
				t.Errorf("killed after %d bytes: temp files left after restart: %v", after, tmp)
			}
			r.kill9()
		}
	})
	t.Run("twenty uploads in flight", func(t *testing.T) {
		r.restart()
		var mu sync.Mutex
		answered := map[string][]byte{}
		var wg sync.WaitGroup
		firstAnswers := make(chan struct{}, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Sizes from 50 KiB to 20 MiB: some finish before the kill, some not.
				body := bytes.Repeat([]byte{byte('a' + i)}, (i*i+1)*50<<10)
				if id, status, _ := r.upload(body); status == 200 {
					mu.Lock()
					answered[id] = body
					mu.Unlock()
					firstAnswers <- struct{}{}
				}
			}()
		}
		for range 5 {
			<-firstAnswers
		}
		r.kill9()
		wg.Wait()
		r.restart()
		checkConsistent(t, "sqlite", dbPath, r.media)
		for id, body := range answered {
			status, got, err := r.request("GET", "/_matrix/client/v1/media/download/example.org/"+id, nil)
			if status != 200 || !bytes.Equal(got, body) {
				t.Errorf("upload %s was answered 200 before the kill, now %d (%v)", id, status, err)
			}
		}
		t.Logf("%d of 20 uploads were answered before the kill; all of them are there", len(answered))
	})
}

// pgCluster is a PostgreSQL cluster of the test's own, on its own port, so
// that stopping it touches nothing else.
type pgCluster struct {
	dir, bin string
	port     int
}

func startPostgres(t *testing.T) *pgCluster {
	t.Helper()
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(versions) == 0 {
		t.Fatal("no PostgreSQL binaries under /usr/lib/postgresql (Debian's postgresql package)")
	}
	// Not under t.TempDir(): PostgreSQL runs as its own user, who must reach it.
	parent, err := os.MkdirTemp("", "mediarepo-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	os.Chmod(parent, 0o755)
	c := &pgCluster{dir: filepath.Join(parent, "data"), bin: filepath.Dir(versions[len(versions)-1]), port: freePort(t)}
	os.MkdirAll(c.dir, 0o700)
	mustRun(t, "chown", "postgres:postgres", c.dir)
	mustRun(t, "runuser", "-u", "postgres", "--", filepath.Join(c.bin, "initdb"), "-D", c.dir, "--auth=trust", "-U", "postgres")
	c.start(t)
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *pgCluster) start(t *testing.T) {
	t.Helper()
	mustRun(t, "runuser", "-u", "postgres", "--", filepath.Join(c.bin, "pg_ctl"), "-D", c.dir, "-w", "-l", filepath.Join(c.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.port, c.dir), "start")
}

func (c *pgCluster) stop(t *testing.T) {
	exec.Command("runuser", "-u", "postgres", "--", filepath.Join(c.bin, "pg_ctl"), "-D", c.dir, "-w", "-m", "fast", "stop").Run()
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func TestFaultPostgresRestartUnderLoad(t *testing.T) {
	pg := startPostgres(t)
	r := newFaultRepo(t, fmt.Sprintf("{postgres: %q}", pg.dsn()), "uploads: {maxPending: 0}")
	var mu sync.Mutex
	statuses := map[int]int{}
	lastFailure := time.Time{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var status int
				if i%2 == 0 {
					_, status, _ = r.upload([]byte(fmt.Sprintf("load %d %d", i, n)))
				} else {
					status, _, _ = r.request("POST", "/_matrix/media/v1/create", nil)
				}
				mu.Lock()
				statuses[status]++
				if status != 200 {
					lastFailure = time.Now()
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	down := time.Now()
	pg.stop(t)
	time.Sleep(2 * time.Second)
	pg.start(t)
	up := time.Now()
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("outage %.1f s; statuses %v; last failure %.2f s after PostgreSQL was back",
		up.Sub(down).Seconds(), statuses, lastFailure.Sub(up).Seconds())
	for status, n := range statuses {
		if status != 200 && status != 503 {
			t.Errorf("%d requests answered %d, want only 200 or 503", n, status)
		}
	}
	if statuses[503] == 0 {
		t.Error("no request saw the outage")
	}
	if lastFailure.After(up.Add(3 * time.Second)) {
		t.Errorf("requests still failed %.1f s after PostgreSQL was back", lastFailure.Sub(up).Seconds())
	}
	if n := strings.Count(r.logs(), "storage outage"); n < 1 || n > 2 {
		t.Errorf("the outage's cause was logged %d times, want once a minute", n)
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir until the test ends.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	os.MkdirAll(dir, 0o750)
	mustRun(t, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

func TestFaultDatastoreFull(t *testing.T) {
	dir := t.TempDir()
	mountTmpfs(t, filepath.Join(dir, "media"), 4<<20)
	r := newFaultRepoAt(t, filepath.Join(dir, "media"), "", "")
	var stored []string
	var last int
	for i := range 10 {
		id, status, err := r.upload(bytes.Repeat([]byte{byte(i)}, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		last = status
		if status != 200 {
			break
		}
		stored = append(stored, id)
	}
	if last != 507 || len(stored) == 0 || len(stored) > 4 {
		t.Fatalf("uploads into a 4 MiB datastore: %d stored, then %d; want a few, then 507", len(stored), last)
	}
	for _, id := range stored {
		if status, _, _ := r.request("GET", "/_matrix/client/v1/media/download/example.org/"+id, nil); status != 200 {
			t.Errorf("download of stored media while full = %d, want 200", status)
		}
	}
	if tmp := tempFiles(t, filepath.Join(dir, "media")); len(tmp) != 0 {
		t.Errorf("a refused upload left temp files: %v", tmp)
	}
	for range 3 {
		r.upload(bytes.Repeat([]byte("z"), 1<<20))
	}
	if n := strings.Count(r.logs(), "storage outage"); n != 1 {
		t.Errorf("the full datastore was logged %d times for 4 refusals, want once", n)
	}
}

func TestFaultDatastoreReadOnly(t *testing.T) {
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	mountTmpfs(t, media, 16<<20)
	r := newFaultRepoAt(t, media, "", "")
	id, status, _ := r.upload([]byte("written before"))
	if status != 200 {
		t.Fatalf("upload = %d", status)
	}
	mustRun(t, "mount", "-o", "remount,ro", media)
	if _, status, _ := r.upload([]byte("refused")); status != 503 {
		t.Errorf("upload to a read-only datastore = %d, want 503", status)
	}
	if status, body, _ := r.request("GET", "/_matrix/client/v1/media/download/example.org/"+id, nil); status != 200 || string(body) != "written before" {
		t.Errorf("download from a read-only datastore = %d %q, want 200", status, body)
	}
	mustRun(t, "mount", "-o", "remount,rw", media)
	if _, status, _ := r.upload([]byte("after")); status != 200 {
		t.Errorf("upload once writable again = %d, want 200", status)
	}
}

func TestFaultSIGTERMWithUploadsInFlight(t *testing.T) {
	r := newFaultRepo(t, "", "timeouts: {shutdownGraceSeconds: 2}")
	// One upload keeps coming for a second; one stalls for ever.
	finishing := make(chan int, 1)
	go func() {
		pr, pw := io.Pipe()
		go func() {
			for range 10 {
				pw.Write(bytes.Repeat([]byte("f"), 10<<10))
				time.Sleep(100 * time.Millisecond)
			}
			pw.Close()
		}()
		status, _, _ := r.request("POST", "/_matrix/media/v3/upload", pr)
		finishing <- status
	}()
	stalled, stallW := io.Pipe()
	defer stallW.Close()
	go r.request("POST", "/_matrix/media/v3/upload", stalled)
	stallW.Write([]byte("half an upload"))
	for len(tempFiles(t, r.media)) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM)
	code := r.waitExit(15 * time.Second)
	took := time.Since(start)
	if status := <-finishing; status != 200 {
		t.Errorf("the upload finishing within the grace period = %d, want 200", status)
	}
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if tmp := tempFiles(t, r.media); len(tmp) != 0 {
		t.Errorf("the stalled upload left temp files: %v", tmp)
	}
	t.Logf("SIGTERM to exit: %.1f s (grace 2 s)", took.Seconds())
}

func TestFaultSlowClients(t *testing.T) {
	r := newFaultRepo(t, "", "timeouts: {bodyIdleSeconds: 2, minBodyBytesPerSecond: 1000}")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("slowloris headers", func(t *testing.T) {
		c := dial()
		defer c.Close()
		start := time.Now()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: example.org\r\n"))
		for range 30 {
			if _, err := c.Write([]byte("X-Slow: 1\r\n")); err != nil {
				break
			}
			time.Sleep(time.Second)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := bufio.NewReader(c).ReadString('\n')
		if took := time.Since(start); err == nil || took > 15*time.Second {
			t.Errorf("a header sent for %v was not cut off (%v)", took, err)
		}
	})
	t.Run("fifty trickling uploads", func(t *testing.T) {
		var wg sync.WaitGroup
		lines := make(chan string, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := dial()
				defer c.Close()
				fmt.Fprintf(c, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: example.org\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", faultToken)
				go func() {
					for range 60 {
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
						time.Sleep(time.Second)
					}
				}()
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				lines <- strings.TrimSpace(line)
			}()
		}
		wg.Wait()
		close(lines)
		for l := range lines {
			if l != "HTTP/1.1 408 Request Timeout" {
				t.Errorf("trickling upload answered %q, want 408", l)
				break
			}
		}
		if tmp := tempFiles(t, r.media); len(tmp) != 0 {
			t.Errorf("%d temp files left by trickling uploads", len(tmp))
		}
	})
}

func TestFaultHomeserver(t *testing.T) {
	r := newFaultRepo(t, "", "timeouts: {clientServerTimeoutSeconds: 1}\naccessTokens: {maxCacheTimeSeconds: 0}")
	check := func(name string, wantStatus int, wantErrcode string) {
		t.Helper()
		status, body, err := r.request("GET", "/_matrix/client/v1/media/config", nil)
		var e struct {
			Code string `json:"errcode"`
		}
		json.Unmarshal(body, &e)
		if err != nil || status != wantStatus || (wantErrcode != "" && e.Code != wantErrcode) {
			t.Errorf("homeserver %s: %d %s (%v), want %d %s", name, status, body, err, wantStatus, wantErrcode)
		}
	}
	check("up", 200, "")
	r.hs.FailWith(500)
	check("answering 500", 502, "M_UNKNOWN")
	r.hs.FailWith(429)
	check("rate limiting", 429, "M_LIMIT_EXCEEDED")
	r.hs.FailWith(0)
	check("back: nothing of the failures was cached", 200, "")
	r.hs.Delay(3 * time.Second)
	check("slower than clientServerTimeoutSeconds", 502, "M_UNKNOWN")
	r.hs.Delay(0)
	r.hs.Close()
	check("down", 502, "M_UNKNOWN")
}

// gradientImage is a smooth image that compresses as photos do.
func gradientImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}

// cjpegFile encodes img with libjpeg-turbo's cjpeg and args.
func cjpegFile(t *testing.T, img *image.RGBA, args ...string) []byte {
	t.Helper()
	b := img.Bounds()
	var ppm bytes.Buffer
	fmt.Fprintf(&ppm, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for i := 0; i < len(img.Pix); i += 4 {
		ppm.Write(img.Pix[i : i+3])
	}
	path := filepath.Join(t.TempDir(), "in.ppm")
	os.WriteFile(path, ppm.Bytes(), 0o600)
	return mustRun(t, "cjpeg", append(args, path)...)
}

func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

func TestFaultMemoryBound(t *testing.T) {
	// The defaults: decodeMemoryBytes 192 MiB, GOMEMLIMIT 384 MiB. The
	// documented bound is 512 MiB of RSS whatever is uploaded.
	r := newFaultRepo(t, "", "")
	hostile := map[string][]byte{
		"5600x5600 progressive 4:4:4 JPEG": cjpegFile(t, gradientImage(5600, 5600), "-progressive", "-sample", "1x1"),
		"4000x3000 progressive JPEG (a)":   cjpegFile(t, gradientImage(4000, 3000), "-progressive"),
		"4000x3000 progressive JPEG (b)":   cjpegFile(t, gradientImage(4000, 3001), "-progressive"),
		"5600x5600 baseline JPEG":          cjpegFile(t, gradientImage(5600, 5600)),
		"4000x3000 16-bit PNG":             png16(t, 4000, 3000),
		"1000-frame GIF of 316x316":        longGIF(t, 1000, 316),
	}
	var wg sync.WaitGroup
	for name, data := range hostile {
		for copy := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := append(bytes.Clone(data), byte(copy)) // three distinct uploads of each
				id, status, err := r.upload(body)
				if status != 200 {
					t.Errorf("%s: upload = %d %v", name, status, err)
					return
				}
				for _, size := range []string{"width=96&height=96&method=crop", "width=800&height=600&method=scale&animated=true"} {
					status, _, _ := r.request("GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?"+size, nil)
					if status != 200 && status != 413 {
						t.Errorf("%s thumbnail = %d, want 200 or 413", name, status)
					}
				}
			}()
		}
	}
	wg.Wait()
	peak := peakRSS(t, r.cmd.Process.Pid)
	t.Logf("peak RSS after %d hostile uploads and their thumbnails: %d MiB", 3*len(hostile), peak>>20)
	if peak > 512<<20 {
		t.Errorf("peak RSS %d MiB, over the documented 512 MiB", peak>>20)
	}
}

// png16 is a w x h 16-bit PNG: eight bytes a pixel once decoded.
func png16(t *testing.T, w, h int) []byte {
	img := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 16), uint16(y * 16), 0x8000, 0xffff})
		}
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// longGIF is an animation of frames frames of size x size, inside
// maxFrames and maxAnimationPixels.
func longGIF(t *testing.T, frames, size int) []byte {
	g := &gif.GIF{}
	pal := color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	for i := range frames {
		f := image.NewPaletted(image.Rect(0, 0, size, size), pal)
		for j := range f.Pix {
			f.Pix[j] = uint8((j/size + i) % 4)
		}
		g.Image, g.Delay = append(g.Image, f), append(g.Delay, 2)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFaultKillTransferMidway: a datastore transfer killed with SIGKILL
// after copying a blob, and after switching a blob's rows, leaves every row
// with its bytes where it says; a run to the end then moves everything, and
// every media downloads with the SHA-256 it was uploaded with.
func TestFaultKillTransferMidway(t *testing.T) {
	dir := t.TempDir()
	roots := map[string]string{"local": filepath.Join(dir, "local"), "cold": filepath.Join(dir, "cold")}
	r := newFaultRepo(t, "", fmt.Sprintf(`datastores:
  - {type: file, id: local, forKinds: [all], opts: {path: %q}}
  - {type: file, id: cold, forKinds: [], opts: {path: %q}}
`, roots["local"], roots["cold"]))
	uploaded := map[string][32]byte{}
	for i := range 12 {
		body := bytes.Repeat([]byte{byte('a' + i%10)}, (i+1)*40<<10) // two pairs share bytes
		if i == 0 {
			body = faultPNG(t)
		}
		id, status, err := r.upload(body)
		if status != 200 {
			t.Fatalf("upload %d = %d, %v", i, status, err)
		}
		uploaded[id] = sha256.Sum256(body)
		if i == 0 {
			if status, _, _ := r.request("GET", "/_matrix/client/v1/media/thumbnail/example.org/"+id+"?width=32&height=32", nil); status != 200 {
				t.Fatalf("thumbnail = %d", status)
			}
		}
	}
	dbPath := filepath.Join(r.dir, "m.db")
	transferOnce := func(crashAt string) (int, string) {
		bin, _ := faultBinary()
		cmd := exec.Command(bin, "datastores", "transfer", "-config", r.cfg, "--from", "local", "--to", "cold")
		cmd.Env = append(os.Environ(), "MEDIAREPO_CRASH_AT="+crashAt)
		out, _ := cmd.CombinedOutput()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal()), string(out)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	// The server keeps running on the same database while the transfers run.
	for _, point := range []string{"transfer-copied#3", "transfer-moved#5", "transfer-copied#1"} {
		code, out := transferOnce(point)
		if code != -int(syscall.SIGKILL) {
			t.Fatalf("transfer with a crash at %s exited %d, want SIGKILL:\n%s", point, code, out)
		}
		checkRowsAndBlobs(t, dbPath, roots)
	}
	code, out := transferOnce("")
	if code != 0 || !strings.Contains(out, "transferred") {
		t.Fatalf("last transfer = %d:\n%s", code, out)
	}
	if n := checkRowsAndBlobs(t, dbPath, roots); n["local"] != 0 || n["cold"] != 13 {
		t.Errorf("rows by datastore after the transfers = %v, want all 13 (12 media, 1 thumbnail) in cold", n)
	}
	for id, want := range uploaded {
		status, body, err := r.request("GET", "/_matrix/client/v1/media/download/example.org/"+id, nil)
		if status != 200 || err != nil || sha256.Sum256(body) != want {
			t.Errorf("media %s after the transfers: %d, %v, sha256 %x; want %x", id, status, err, sha256.Sum256(body), want)
		}
	}
}

// checkRowsAndBlobs fails the test if a media or thumbnail row has no blob
// in its datastore (roots by ID) or one whose SHA-256 is not the row's, and
// counts the rows by datastore.
func checkRowsAndBlobs(t *testing.T, dbPath string, roots map[string]string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT media_id, sha256, datastore_id FROM media UNION ALL SELECT media_id, sha256, datastore_id FROM thumbnails`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var id, sum, ds string
		if err := rows.Scan(&id, &sum, &ds); err != nil {
			t.Fatal(err)
		}
		n[ds]++
		b, err := os.ReadFile(filepath.Join(roots[ds], sum[0:2], sum[2:4], sum))
		if err != nil {
			t.Errorf("row of %s says datastore %s, where its blob is not: %v", id, ds, err)
			continue
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("row of %s: the blob in %s hashes to %x, not %s", id, ds, got, sum)
		}
	}
	return n
}

// faultPNG is an opaque 200x150 image, big enough to be thumbnailed.
func faultPNG(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 200, 150))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
