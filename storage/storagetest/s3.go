package storagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mediarepo/mediarepo/storage/s3"
)

// SeaweedFSVersion is the SeaweedFS module version the S3 tests run;
// storage/s3/testdata/build-seaweedfs.sh (make test-deps) builds it.
const SeaweedFSVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// S3 credentials of the test server.
const (
	S3AccessKey = "mediarepo"
	S3SecretKey = "mediarepo-secret-key"
)

// WeedBinary is the SeaweedFS binary: $MEDIAREPO_WEED, or the one
// build-seaweedfs.sh left in the cache ($MEDIAREPO_E2E_CACHE, by default
// ~/.cache/mediarepo-e2e).
func WeedBinary() string {
	if p := os.Getenv("MEDIAREPO_WEED"); p != "" {
		return p
	}
	cache := os.Getenv("MEDIAREPO_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "mediarepo-e2e")
	}
	return filepath.Join(cache, "seaweedfs-"+SeaweedFSVersion, "weed")
}

// S3Server is a SeaweedFS server (weed mini) on loopback: a real S3 API.
type S3Server struct {
	Endpoint string // 127.0.0.1:port
	dir      string
	args     []string
	cmd      *exec.Cmd
	log      *os.File
	admin    *minio.Client
}

// StartS3 starts a SeaweedFS server for the test, stopped at cleanup.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	s, err := newS3Server(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("--- SeaweedFS log ---\n%s", s.logTail())
		}
	})
	return s
}

// WithS3 runs a package's tests with one SeaweedFS server in *srv, for a
// TestMain: os.Exit(storagetest.WithS3(m, &srv)).
func WithS3(m *testing.M, srv **S3Server) int {
	dir, err := os.MkdirTemp("", "mediarepo-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := newS3Server(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	code := m.Run()
	s.Stop()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- SeaweedFS log ---\n%s\n", s.logTail())
	}
	return code
}

func newS3Server(dir string) (*S3Server, error) {
	bin := WeedBinary()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("SeaweedFS is not built (make test-deps runs storage/s3/testdata/build-seaweedfs.sh): %w", err)
	}
	config := filepath.Join(dir, "s3.json")
	identity := fmt.Sprintf(`{"identities":[{"name":"mediarepo","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, S3AccessKey, S3SecretKey)
	if err := os.WriteFile(config, []byte(identity), 0o600); err != nil {
		return nil, err
	}
	ports, err := freePorts(13)
	if err != nil {
		return nil, err
	}
	s := &S3Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[0]), dir: dir}
	s.args = []string{"mini", "-dir=" + filepath.Join(dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprintf("-s3.port=%d", ports[0]), fmt.Sprintf("-s3.port.grpc=%d", ports[1]),
		fmt.Sprintf("-master.port=%d", ports[2]), fmt.Sprintf("-master.port.grpc=%d", ports[3]),
		fmt.Sprintf("-volume.port=%d", ports[4]), fmt.Sprintf("-volume.port.grpc=%d", ports[5]),
		fmt.Sprintf("-filer.port=%d", ports[6]), fmt.Sprintf("-filer.port.grpc=%d", ports[7]),
		fmt.Sprintf("-admin.port=%d", ports[8]), fmt.Sprintf("-admin.port.grpc=%d", ports[9]),
		fmt.Sprintf("-debug.port=%d", ports[10]), fmt.Sprintf("-volume.port.public=%d", ports[11]),
		fmt.Sprintf("-filer.port.public=%d", ports[12]),
		"-admin.port.legacy=0", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + config,
	}
	admin, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(S3AccessKey, S3SecretKey, ""), MaxRetries: 1})
	if err != nil {
		return nil, err
	}
	s.admin = admin
	if err := s.start(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *S3Server) logTail() []byte {
	b, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return b
}

// freePorts finds n ports free on loopback right now.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Start starts the server again after Stop (the same data and ports) and
// waits until its S3 API answers.
func (s *S3Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

func (s *S3Server) start() error {
	log, err := os.OpenFile(filepath.Join(s.dir, "weed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.log = log
	s.cmd = exec.Command(WeedBinary(), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start SeaweedFS: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.admin.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("SeaweedFS's S3 API did not answer within a minute at %s", s.Endpoint)
}

// Stop kills the server (SIGTERM, then SIGKILL), keeping its data.
func (s *S3Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	s.log.Close()
	s.cmd = nil
}

// NewBucket creates a bucket of its own for the test.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "t-" + strings.ToLower(randomHex(t, 6))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return name
}

// Options are a datastore's options for bucket on this server.
func (s *S3Server) Options(t testing.TB, bucket string) s3.Options {
	return s3.Options{Endpoint: s.Endpoint, AccessKeyID: S3AccessKey, AccessSecret: S3SecretKey, Bucket: bucket,
		TempPath: t.TempDir(), Multipart: true}
}

// Open opens a datastore on a new bucket of this server; transport, if not
// nil, carries its requests.
func (s *S3Server) Open(t testing.TB, transport http.RoundTripper) *s3.Store {
	t.Helper()
	o := s.Options(t, s.NewBucket(t))
	o.Transport = transport
	st, err := s3.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open s3 store: %v", err)
	}
	return st
}
