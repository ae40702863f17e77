// Package storagetest holds the conformance suites every metadata store and
// BlobStore implementation runs (one per interface), and helpers that open real backends for tests:
// a fresh PostgreSQL schema, an SQLite file and a disk datastore in t.TempDir().
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/sqlite"
)

// DefaultPostgresDSN is used when MEDIAREPO_TEST_POSTGRES is not set; it
// matches the CI machine (trust auth on 127.0.0.1).
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN creates a fresh schema in the test database, returns a DSN whose
// search_path selects it, and drops the schema when the test ends. An
// unreachable PostgreSQL fails the test unless MEDIAREPO_TEST_SKIP_POSTGRES=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	if os.Getenv("MEDIAREPO_TEST_SKIP_POSTGRES") == "1" {
		t.Skip("MEDIAREPO_TEST_SKIP_POSTGRES=1")
	}
	base := os.Getenv("MEDIAREPO_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgresDSN
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open postgres %s: %v", redact(base), err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := "t_" + randomHex(t, 8)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("postgres at %s unreachable (set MEDIAREPO_TEST_POSTGRES, or MEDIAREPO_TEST_SKIP_POSTGRES=1 to skip): %v", redact(base), err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		// A key=value DSN: lib/pq passes unknown keys as run-time parameters.
		return base + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres returns a migrated Store in a fresh schema, closed at cleanup.
func OpenPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	s, _, err := postgres.Open(context.Background(), PostgresDSN(t), config.Pool{MaxConnections: 10, MaxIdleConnections: 5})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenSQLite returns a migrated Store on a file in t.TempDir(), closed at cleanup.
func OpenSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "media.db"), config.Pool{MaxConnections: 10, MaxIdleConnections: 5})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenDisk returns a file datastore in t.TempDir().
func OpenDisk(t testing.TB) *disk.Store {
	t.Helper()
	s, err := disk.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatalf("open disk store: %v", err)
	}
	return s
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// redact hides a password in a DSN before it reaches test output.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
		}
		return u.String()
	}
	if strings.Contains(dsn, "password") {
		return "(dsn with password)"
	}
	return dsn
}

// CountBlobs counts the blobs of the disk datastore at root, leaving out its
// temporary files.
func CountBlobs(t testing.TB, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Proxy is a TCP proxy to a server that a test can cut and restore, to see
// what a client does when the server goes away.
type Proxy struct {
	target string
	ln     net.Listener
	addr   string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	up     bool
}

// StartProxy listens on 127.0.0.1 and forwards to target until cleanup.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}, up: true}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

// Addr is host:port to dial instead of the target.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		if up {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[s] = true
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
}

// PostgresDSNVia is PostgresDSN with the server reached through p, which
// must proxy to the test database's host and port.
func PostgresDSNVia(t testing.TB, dsn string, p *Proxy) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("PostgresDSNVia needs a URL DSN, got %s", redact(dsn))
	}
	u.Host = p.Addr()
	return u.String()
}

// PostgresHost is the host:port of the test database.
func PostgresHost(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MEDIAREPO_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgresDSN
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		t.Skip("MEDIAREPO_TEST_POSTGRES is not a URL; the proxy tests need one")
	}
	if u.Port() == "" {
		return u.Host + ":5432"
	}
	return u.Host
}
