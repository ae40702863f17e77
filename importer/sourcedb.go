package importer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/lib/pq"  // postgres
	_ "modernc.org/sqlite" // sqlite
)

// sourceDB is another server's database, opened to be read only.
type sourceDB struct {
	db     *sql.DB
	sqlite bool
}

// openSource opens dsn: a PostgreSQL URL or key=value string, or an SQLite
// file ("sqlite:" followed by its path, or a path ending in .db). SQLite is
// opened read-only; PostgreSQL reads run in read-only transactions.
func openSource(ctx context.Context, dsn string) (*sourceDB, error) {
	path, isSQLite := strings.CutPrefix(dsn, "sqlite:")
	if !isSQLite && (strings.HasSuffix(dsn, ".db") || strings.HasPrefix(dsn, "file:")) {
		path, isSQLite = strings.TrimPrefix(dsn, "file:"), true
	}
	var db *sql.DB
	var err error
	if isSQLite {
		db, err = sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	} else {
		db, err = sql.Open("postgres", dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the source database: %w", err)
	}
	return &sourceDB{db: db, sqlite: isSQLite}, nil
}

// columns lists the columns of table, so a source can read what its
// version has (older servers lack newer columns).
func (s *sourceDB) columns(ctx context.Context, table string) (map[string]bool, error) {
	q := `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()`
	if s.sqlite {
		q = `SELECT name FROM pragma_table_info(?)`
	}
	rows, err := s.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out[c] = true
	}
	if len(out) == 0 && rows.Err() == nil {
		return nil, fmt.Errorf("table %s not found", table)
	}
	return out, rows.Err()
}

// col is name if the table has it, else a literal standing in for it.
func col(have map[string]bool, name, otherwise string) string {
	if have[name] {
		return name
	}
	return otherwise + " AS " + name
}

// query runs q in a read-only transaction, calling fn on every row.
func (s *sourceDB) query(ctx context.Context, q string, fn func(*sql.Rows) error, args ...any) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: !s.sqlite})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// prepare prepares q, written with $n placeholders, for the dialect.
func (s *sourceDB) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	if s.sqlite {
		q = strings.NewReplacer("$1", "?1", "$2", "?2").Replace(q)
	}
	return s.db.PrepareContext(ctx, q)
}

// count is how many rows table has and the sum of its column size.
func (s *sourceDB) count(ctx context.Context, table, size string) (items, bytes int64, err error) {
	err = s.query(ctx, "SELECT COUNT(*), COALESCE(SUM("+size+"), 0) FROM "+table, func(r *sql.Rows) error {
		return r.Scan(&items, &bytes)
	})
	return items, bytes, err
}

func (s *sourceDB) Close() error { return s.db.Close() }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
