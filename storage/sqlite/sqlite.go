// Package sqlite is the embedded SQLite MetadataStore (modernc.org/sqlite, pure Go). It owns its SQL
// text; the schema comes from migrations. It imports storage, migrations, config.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/migrations"
	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.MetadataStore = (*Store)(nil)

const (
	insertMedia = `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (origin, media_id) DO NOTHING`
	selectMedia = `SELECT origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated
		FROM media WHERE origin = ? AND media_id = ?`
	insertThumbnail = `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type,
		sha256, size_bytes, datastore_id, created_ts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`
	selectThumbnails = `SELECT origin, media_id, width, height, method, animated, content_type, sha256,
		size_bytes, datastore_id, created_ts
		FROM thumbnails WHERE origin = ? AND media_id = ?
		ORDER BY width, height, method, animated, content_type`
)

// Store is a MetadataStore on SQLite.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database file at path in WAL mode,
// sizes the pool and applies pending migrations; it returns the names of those
// applied. Use a real file, never ":memory:": each pooled connection would get
// its own empty database.
func Open(ctx context.Context, path string, pool config.Pool) (*Store, []string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("create sqlite dir: %w", err)
	}
	// busy_timeout lets writers queue instead of failing; _txlock=immediate takes
	// the write lock at BEGIN so a read-then-write transaction cannot deadlock.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(pool.MaxConnections)
	db.SetMaxIdleConns(pool.MaxIdleConnections)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	applied, err := migrations.Apply(ctx, db, migrations.SQLite)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return &Store{db: db}, applied, nil
}

// CreateMedia implements storage.MetadataStore.
func (s *Store) CreateMedia(ctx context.Context, m *storage.Media) error {
	res, err := s.db.ExecContext(ctx, insertMedia, m.Origin, m.MediaID, m.UploadName, m.ContentType,
		m.UserID, m.SHA256, m.SizeBytes, m.DatastoreID, m.CreatedAt.UnixMilli(), m.Authenticated)
	if err != nil {
		return fmt.Errorf("insert media %s/%s: %w", m.Origin, m.MediaID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("insert media %s/%s: %w", m.Origin, m.MediaID, storage.ErrExists)
	}
	return nil
}

// Media implements storage.MetadataStore.
func (s *Store) Media(ctx context.Context, origin, mediaID string) (*storage.Media, error) {
	m, err := scanMedia(s.db.QueryRowContext(ctx, selectMedia, origin, mediaID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("select media %s/%s: %w", origin, mediaID, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("select media %s/%s: %w", origin, mediaID, err)
	}
	return m, nil
}

// CreateThumbnail implements storage.MetadataStore.
func (s *Store) CreateThumbnail(ctx context.Context, t *storage.Thumbnail) error {
	res, err := s.db.ExecContext(ctx, insertThumbnail, t.Origin, t.MediaID, t.Width, t.Height, t.Method,
		t.Animated, t.ContentType, t.SHA256, t.SizeBytes, t.DatastoreID, t.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert thumbnail of %s/%s: %w", t.Origin, t.MediaID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("insert thumbnail of %s/%s: %w", t.Origin, t.MediaID, storage.ErrExists)
	}
	return nil
}

// Thumbnails implements storage.MetadataStore.
func (s *Store) Thumbnails(ctx context.Context, origin, mediaID string) ([]storage.Thumbnail, error) {
	rows, err := s.db.QueryContext(ctx, selectThumbnails, origin, mediaID)
	if err != nil {
		return nil, fmt.Errorf("select thumbnails of %s/%s: %w", origin, mediaID, err)
	}
	defer rows.Close()
	var out []storage.Thumbnail
	for rows.Next() {
		var t storage.Thumbnail
		var created int64
		if err := rows.Scan(&t.Origin, &t.MediaID, &t.Width, &t.Height, &t.Method, &t.Animated,
			&t.ContentType, &t.SHA256, &t.SizeBytes, &t.DatastoreID, &created); err != nil {
			return nil, fmt.Errorf("scan thumbnail of %s/%s: %w", origin, mediaID, err)
		}
		t.CreatedAt = time.UnixMilli(created)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select thumbnails of %s/%s: %w", origin, mediaID, err)
	}
	return out, nil
}

// Close implements storage.MetadataStore.
func (s *Store) Close() error { return s.db.Close() }

func scanMedia(row *sql.Row) (*storage.Media, error) {
	var m storage.Media
	var created int64
	err := row.Scan(&m.Origin, &m.MediaID, &m.UploadName, &m.ContentType, &m.UserID, &m.SHA256,
		&m.SizeBytes, &m.DatastoreID, &created, &m.Authenticated)
	if err != nil {
		return nil, err
	}
	m.CreatedAt = time.UnixMilli(created)
	return &m, nil
}
