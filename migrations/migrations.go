// Package migrations holds the SQL schema of both metadata stores as embedded,
// numbered files, one set per dialect, and applies the pending ones in order.
// Migrations only move forward.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialects.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// pgLockID serialises migrations across processes sharing one PostgreSQL.
const pgLockID = 0x6d656469

// Apply runs every migration of dialect that db has not recorded yet, each in
// its own transaction, and returns the names it applied. Running it again is a
// no-op. For SQLite the DSN must make transactions take the write lock at BEGIN
// (_txlock=immediate) so that two processes cannot apply the same step.
func Apply(ctx context.Context, db *sql.DB, dialect string) ([]string, error) {
	steps, err := list(dialect)
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, st := range steps {
		did, err := apply(ctx, db, dialect, st)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", st.name, err)
		}
		if did {
			applied = append(applied, st.name)
		}
	}
	return applied, nil
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_ts BIGINT NOT NULL)`

type step struct {
	version int
	name    string
	sql     string
}

func list(dialect string) ([]step, error) {
	if dialect != Postgres && dialect != SQLite {
		return nil, fmt.Errorf("unknown dialect %q", dialect)
	}
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, err
	}
	var steps []step
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s/%s is not named NNNN_what.sql", dialect, e.Name())
		}
		body, err := fs.ReadFile(files, dialect+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		steps = append(steps, step{version: v, name: strings.TrimSuffix(e.Name(), ".sql"), sql: string(body)})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].version < steps[j].version })
	return steps, nil
}

func apply(ctx context.Context, db *sql.DB, dialect string, st step) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	q := `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`
	ins := `INSERT INTO schema_migrations (version, name, applied_ts) VALUES (?, ?, ?)`
	if dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, pgLockID); err != nil {
			return false, fmt.Errorf("lock: %w", err)
		}
		q = `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`
		ins = `INSERT INTO schema_migrations (version, name, applied_ts) VALUES ($1, $2, $3)`
	}
	// Created under the lock, so two processes starting at once do not race.
	if _, err := tx.ExecContext(ctx, createTable); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, st.version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, st.sql); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, ins, st.version, st.name, time.Now().UnixMilli()); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
