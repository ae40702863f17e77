package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mediarepo/mediarepo/migrations"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

func TestApplyIsIdempotent(t *testing.T) {
	dbs := map[string]func(t *testing.T) *sql.DB{
		migrations.Postgres: func(t *testing.T) *sql.DB { return mustOpen(t, "postgres", storagetest.PostgresDSN(t)) },
		migrations.SQLite: func(t *testing.T) *sql.DB {
			return mustOpen(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
		},
	}
	for dialect, open := range dbs {
		t.Run(dialect, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			first, err := migrations.Apply(ctx, db, dialect)
			if err != nil || len(first) == 0 || first[0] != "0001_media" {
				t.Fatalf("first Apply = %v, %v; want [0001_media ...]", first, err)
			}
			second, err := migrations.Apply(ctx, db, dialect)
			if err != nil || len(second) != 0 {
				t.Fatalf("second Apply = %v, %v; want nothing applied", second, err)
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(first) {
				t.Errorf("schema_migrations rows = %d, %v; want %d", n, err, len(first))
			}
		})
	}
}

func TestConcurrentApplyOnPostgres(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	var wg sync.WaitGroup
	results := make([][]string, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := mustOpen(t, "postgres", dsn)
			var err error
			if results[i], err = migrations.Apply(context.Background(), db, migrations.Postgres); err != nil {
				t.Errorf("Apply: %v", err)
			}
		}()
	}
	wg.Wait()
	// Each migration ran exactly once in all.
	seen := map[string]int{}
	for _, r := range results {
		for _, name := range r {
			seen[name]++
		}
	}
	if len(seen) == 0 {
		t.Fatal("no migration applied")
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s applied %d times, want 1", name, n)
		}
	}
}

func TestUnknownDialect(t *testing.T) {
	if _, err := migrations.Apply(context.Background(), nil, "mysql"); err == nil {
		t.Error("Apply(mysql) succeeded, want error")
	}
}

func mustOpen(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
