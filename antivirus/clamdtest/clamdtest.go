// Package clamdtest runs a real ClamAV clamd (Debian's clamav-daemon) for
// tests, on a unix socket and a loopback TCP port. The official signature
// databases cannot be downloaded where the tests run, so clamd loads one
// custom body signature (an .ndb) that matches Pattern, like any other.
package clamdtest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Pattern is what the test signature matches anywhere in a file.
const Pattern = "mediarepo antivirus test pattern 7f3a"

// Signature is the test signature's name, as clamd reports it.
const Signature = "MediarepoTestSignature.UNOFFICIAL"

// Clamd is a running clamd.
type Clamd struct {
	TCP, Unix string // addresses as antivirus.Options.Address wants them
	conf      string
	cmd       *exec.Cmd
	done      chan struct{}
	dir       string
}

// Binary is where Debian installs clamd.
func Binary() string {
	if p, err := exec.LookPath("clamd"); err == nil {
		return p
	}
	return "/usr/sbin/clamd"
}

// Start runs clamd until the test ends; it fails the test if clamd is not
// installed (make test-deps installs clamav-daemon).
func Start(t testing.TB) *Clamd {
	t.Helper()
	if _, err := os.Stat(Binary()); err != nil {
		t.Fatalf("clamd not found: run make test-deps (clamav-daemon): %v", err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	os.Mkdir(db, 0o755)
	sig := fmt.Sprintf("%s:0:*:%s\n", strings.TrimSuffix(Signature, ".UNOFFICIAL"), hex.EncodeToString([]byte(Pattern)))
	if err := os.WriteFile(filepath.Join(db, "mediarepo-test.ndb"), []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	sock := filepath.Join(dir, "clamd.sock")
	c := &Clamd{TCP: fmt.Sprintf("tcp://127.0.0.1:%d", port), Unix: "unix://" + sock, dir: dir, conf: filepath.Join(dir, "clamd.conf")}
	conf := fmt.Sprintf(`Foreground yes
LocalSocket %s
TCPSocket %d
TCPAddr 127.0.0.1
DatabaseDirectory %s
LogFile %s
PidFile %s
StreamMaxLength 20M
`, sock, port, db, filepath.Join(dir, "clamd.log"), filepath.Join(dir, "clamd.pid"))
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "clamd.log"))
			t.Logf("--- clamd log ---\n%s", b)
		}
	})
	return c
}

func (c *Clamd) start(t testing.TB) {
	t.Helper()
	c.cmd = exec.Command(Binary(), "-c", c.conf)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.done) }()
	addr := strings.TrimPrefix(c.TCP, "tcp://")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ping(addr) {
			return
		}
		select {
		case <-c.done:
			t.Fatal("clamd exited at start-up")
		default:
		}
	}
	t.Fatal("clamd did not answer PING within 60 s")
}

func ping(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write([]byte("zPING\x00"))
	reply, err := bufio.NewReader(conn).ReadString(0)
	return err == nil && reply == "PONG\x00"
}

// Stop stops clamd (for outage tests); Restart starts it again.
func (c *Clamd) Stop() {
	if c.cmd == nil {
		return
	}
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	c.cmd = nil
}

// Restart starts a stopped clamd again.
func (c *Clamd) Restart(t testing.TB) {
	t.Helper()
	c.start(t)
}
