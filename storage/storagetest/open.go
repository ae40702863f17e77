// Package storagetest holds the conformance suites every metadata store and
// BlobStore implementation runs (one per interface), and helpers that open real backends for tests:
// a fresh PostgreSQL schema, an SQLite file and a disk datastore in t.TempDir().
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
