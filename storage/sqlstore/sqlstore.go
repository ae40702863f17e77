// Package sqlstore is the database/sql engine under the postgres and sqlite
// MetadataStores, as perkeep's files package is under localdisk: the Go side of
// every query lives here once, while each dialect package owns its SQL text,
// its driver and how it opens the database. It imports only storage.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// Queries is a dialect's SQL text. Placeholders are in the dialect's own
// syntax; the column lists must be the ones shown in each field's comment.
type Queries struct {
	// InsertMedia takes origin, media_id, upload_name, content_type, user_id,
	// sha256, size_bytes, datastore_id, created_ts, authenticated, and inserts
	// nothing on a key conflict.
	InsertMedia string
	// SelectMedia takes origin, media_id and returns the same columns.
	SelectMedia string
	// InsertThumbnail takes origin, media_id, width, height, method, animated,
	// content_type, sha256, size_bytes, datastore_id, created_ts, and inserts
	// nothing on a key conflict.
	InsertThumbnail string
	// SelectThumbnails takes origin, media_id and returns the same columns.
	SelectThumbnails string
}

// Store implements storage.MetadataStore on a *sql.DB with a dialect's Queries.
type Store struct {
	db *sql.DB
	q  Queries
}

var _ storage.MetadataStore = (*Store)(nil)

// New returns a Store on db, which it closes on Close.
func New(db *sql.DB, q Queries) *Store { return &Store{db: db, q: q} }

// CreateMedia implements storage.MetadataStore.
func (s *Store) CreateMedia(ctx context.Context, m *storage.Media) error {
	res, err := s.db.ExecContext(ctx, s.q.InsertMedia, m.Origin, m.MediaID, m.UploadName, m.ContentType,
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
	m, err := scanMedia(s.db.QueryRowContext(ctx, s.q.SelectMedia, origin, mediaID))
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
	res, err := s.db.ExecContext(ctx, s.q.InsertThumbnail, t.Origin, t.MediaID, t.Width, t.Height, t.Method,
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
	rows, err := s.db.QueryContext(ctx, s.q.SelectThumbnails, origin, mediaID)
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
