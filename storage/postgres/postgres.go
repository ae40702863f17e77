// Package postgres is the PostgreSQL MetadataStore (lib/pq). It owns its SQL
// text; the schema comes from migrations. It imports storage, migrations, config.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "github.com/lib/pq" // registers the "postgres" driver

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/migrations"
	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.MetadataStore = (*Store)(nil)

const (
	insertMedia = `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (origin, media_id) DO NOTHING`
	selectMedia = `SELECT origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated
		FROM media WHERE origin = $1 AND media_id = $2`
	insertThumbnail = `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type,
		sha256, size_bytes, datastore_id, created_ts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`
	selectThumbnails = `SELECT origin, media_id, width, height, method, animated, content_type, sha256,
		size_bytes, datastore_id, created_ts
		FROM thumbnails WHERE origin = $1 AND media_id = $2
		ORDER BY width, height, method, animated, content_type`
)

// Store is a MetadataStore on PostgreSQL.
type Store struct {
	db *sql.DB
}

// Open connects to dsn, checks the connection, sizes the pool and applies
// pending migrations; it returns the names of those applied.
func Open(ctx context.Context, dsn string, pool config.Pool) (*Store, []string, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(pool.MaxConnections)
	db.SetMaxIdleConns(pool.MaxIdleConnections)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("connect to postgres: %w", err)
	}
	applied, err := migrations.Apply(ctx, db, migrations.Postgres)
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
