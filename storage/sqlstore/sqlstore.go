// Package sqlstore is the database/sql engine under the postgres and sqlite
// metadata stores, as perkeep's files package is under localdisk: the Go side of
// every query lives here once, while each dialect package owns its SQL text,
// its driver and how it opens the database. It imports only storage.
package sqlstore

import (
	"cmp"
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
	// SelectMedia takes origin, media_id and returns the same columns, then
	// quarantined_by ('' when the bytes are not quarantined), protected,
	// last_access_ts.
	SelectMedia string
	// InsertThumbnail takes origin, media_id, width, height, method, animated,
	// content_type, sha256, size_bytes, datastore_id, created_ts, and inserts
	// nothing on a key conflict.
	InsertThumbnail string
	// SelectThumbnails takes origin, media_id and returns the same columns.
	SelectThumbnails string

	// LockKey, run in a transaction, serialises the transactions that take it
	// for one key (a user ID, a blob) until they end; empty where transactions
	// are serialised anyway (SQLite, BEGIN IMMEDIATE).
	LockKey string
	// Param is how the dialect writes numbered placeholders: "$" ($1) or
	// "?" (?1). The queries built here use it.
	Param string
	// EnsureUsage takes user_id and inserts its zero usage row if missing.
	EnsureUsage string
	// SelectUsageForUpdate takes user_id and returns bytes, files, locking
	// the row until the transaction ends where the database can.
	SelectUsageForUpdate string
	// AddUsage takes user_id, bytes, files and adds them to the usage row.
	AddUsage string
	// CountPending takes user_id, now_ms and returns the number of the user's
	// unexpired reservations and the earliest expiry among them (or NULL).
	CountPending string
	// MediaExists takes origin, media_id and returns a row if the media exists.
	MediaExists string
	// InsertPending takes origin, media_id, user_id, created_ts, expires_ts and
	// inserts nothing on a key conflict.
	InsertPending string
	// SelectPending takes origin, media_id, now_ms and returns origin, media_id,
	// user_id, created_ts, expires_ts of an unexpired reservation.
	SelectPending string
	// DeletePending takes origin, media_id, user_id, now_ms and deletes that
	// unexpired reservation.
	DeletePending string
	// DeleteExpiredPending takes now_ms.
	DeleteExpiredPending string
	// NotifyUploaded takes "origin/media_id" and announces it to other
	// processes; empty where the database cannot.
	NotifyUploaded string
	// SelectUsage takes user_id and returns bytes, files of its usage row.
	SelectUsage string
	// InsertURLPreview takes server_name, url, bucket, lang, status, errcode,
	// body, created_ts and inserts nothing on a key conflict.
	InsertURLPreview string
	// SelectURLPreview takes server_name, url, bucket, lang and returns the
	// same columns.
	SelectURLPreview string
	// DeleteURLPreviews takes created_ts and deletes the rows created before.
	DeleteURLPreviews string

	// Classify returns storage.ErrUnavailable, ErrFull or ErrReadOnly for a
	// driver error that means the database cannot be used right now, else nil.
	Classify func(error) error
}

// Store implements the storage metadata interfaces on a *sql.DB with a dialect's Queries.
type Store struct {
	db *sql.DB
	q  Queries
	a  adminQueries // the dialect-neutral ones, in the dialect's placeholders
	// lockSlots bounds the connections Lock holds.
	lockSlots chan struct{}
}

var (
	_ storage.MediaStore       = (*Store)(nil)
	_ storage.ThumbnailStore   = (*Store)(nil)
	_ storage.ReservationStore = (*Store)(nil)
	_ storage.PreviewStore     = (*Store)(nil)
	_ storage.RetentionStore   = (*Store)(nil)
)

// New returns a Store on db, which it closes on Close.
func New(db *sql.DB, q Queries) *Store {
	return &Store{db: db, q: q, a: newAdminQueries(q.Param), lockSlots: make(chan struct{}, lockSlotsFor(db.Stats().MaxOpenConnections))}
}

// CreateMedia implements storage.MediaStore.
func (s *Store) CreateMedia(ctx context.Context, m *storage.Media, q storage.Quota, publish storage.Publish) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "insert media "+m.Origin+"/"+m.MediaID, func(tx *sql.Tx) error {
		return s.addMedia(ctx, tx, m, q, publish)
	})
}

// addMedia checks m against its user's quota, inserts it, counts it in the
// user's usage and publishes its blob, in tx.
func (s *Store) addMedia(ctx context.Context, tx *sql.Tx, m *storage.Media, q storage.Quota, publish storage.Publish) error {
	if err := s.lock(ctx, tx, blobLock(m.SHA256)); err != nil {
		return err
	}
	if m.QuarantinedBy == "" { // an import of quarantined media knows
		if quarantined, err := rowExists(ctx, tx, s.a.hashQuarantined, m.SHA256, m.Origin); err != nil || quarantined {
			return cmp.Or(err, storage.ErrQuarantined)
		}
	}
	if purged, err := rowExists(ctx, tx, s.a.purged, m.Origin, m.MediaID); err != nil || purged {
		return cmp.Or(err, fmt.Errorf("media ID purged: %w", storage.ErrExists))
	}
	if m.UserID != "" {
		if err := s.checkQuota(ctx, tx, m, q); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, s.q.InsertMedia, m.Origin, m.MediaID, m.UploadName, m.ContentType,
		m.UserID, m.SHA256, m.SizeBytes, m.DatastoreID, m.CreatedAt.UnixMilli(), m.Authenticated)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return storage.ErrExists
	}
	if m.UserID != "" {
		if _, err := tx.ExecContext(ctx, s.q.AddUsage, m.UserID, m.SizeBytes, 1); err != nil {
			return err
		}
	}
	if publish != nil {
		if err := publish(ctx); err != nil {
			return fmt.Errorf("publish blob %s: %w", m.SHA256, err)
		}
	}
	return nil
}

// checkQuota fails with ErrQuotaExceeded if m would take its user over q. It
// holds the user's usage row until the transaction ends, so concurrent uploads
// are counted one by one.
func (s *Store) checkQuota(ctx context.Context, tx *sql.Tx, m *storage.Media, q storage.Quota) error {
	if _, err := tx.ExecContext(ctx, s.q.EnsureUsage, m.UserID); err != nil {
		return err
	}
	var u storage.Usage
	if err := tx.QueryRowContext(ctx, s.q.SelectUsageForUpdate, m.UserID).Scan(&u.Bytes, &u.Files); err != nil {
		return err
	}
	if q.MaxBytes > 0 && u.Bytes+m.SizeBytes > q.MaxBytes {
		return fmt.Errorf("%s would store %d of %d bytes: %w", m.UserID, u.Bytes+m.SizeBytes, q.MaxBytes, storage.ErrQuotaExceeded)
	}
	if q.MaxFiles > 0 && u.Files+1 > q.MaxFiles {
		return fmt.Errorf("%s would store %d of %d files: %w", m.UserID, u.Files+1, q.MaxFiles, storage.ErrQuotaExceeded)
	}
	return nil
}

// Usage implements storage.MediaStore.
func (s *Store) Usage(ctx context.Context, userID string) (_ storage.Usage, err error) {
	defer s.classify(&err)
	var u storage.Usage
	err = s.db.QueryRowContext(ctx, s.q.SelectUsage, userID).Scan(&u.Bytes, &u.Files)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Usage{}, nil
	}
	if err != nil {
		return u, fmt.Errorf("select usage of %s: %w", userID, err)
	}
	return u, nil
}

// Media implements storage.MediaStore.
func (s *Store) Media(ctx context.Context, origin, mediaID string) (_ *storage.Media, err error) {
	defer s.classify(&err)
	m, err := scanMedia(s.db.QueryRowContext(ctx, s.q.SelectMedia, origin, mediaID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("select media %s/%s: %w", origin, mediaID, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("select media %s/%s: %w", origin, mediaID, err)
	}
	return m, nil
}

// CreateThumbnail implements storage.ThumbnailStore.
func (s *Store) CreateThumbnail(ctx context.Context, t *storage.Thumbnail, publish storage.Publish) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "insert thumbnail of "+t.Origin+"/"+t.MediaID, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, blobLock(t.SHA256)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q.InsertThumbnail, t.Origin, t.MediaID, t.Width, t.Height, t.Method,
			t.Animated, t.ContentType, t.SHA256, t.SizeBytes, t.DatastoreID, t.CreatedAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return storage.ErrExists
		}
		if publish != nil {
			if err := publish(ctx); err != nil {
				return fmt.Errorf("publish blob %s: %w", t.SHA256, err)
			}
		}
		return nil
	})
}

// Thumbnails implements storage.ThumbnailStore.
func (s *Store) Thumbnails(ctx context.Context, origin, mediaID string) (_ []storage.Thumbnail, err error) {
	defer s.classify(&err)
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

// CreatePending implements storage.ReservationStore.
func (s *Store) CreatePending(ctx context.Context, p *storage.Pending, maxPending int) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "reserve media", func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, p.UserID); err != nil {
			return err
		}
		if maxPending > 0 {
			var n int
			var oldest sql.NullInt64
			if err := tx.QueryRowContext(ctx, s.q.CountPending, p.UserID, p.CreatedAt.UnixMilli()).Scan(&n, &oldest); err != nil {
				return err
			}
			if n >= maxPending {
				return fmt.Errorf("%s has %d pending uploads: %w", p.UserID, n, &storage.LimitError{Until: time.UnixMilli(oldest.Int64)})
			}
		}
		exists, err := rowExists(ctx, tx, s.q.MediaExists, p.Origin, p.MediaID)
		if err != nil {
			return err
		}
		purged, err := rowExists(ctx, tx, s.a.purged, p.Origin, p.MediaID)
		if err != nil {
			return err
		}
		if exists || purged {
			return storage.ErrExists
		}
		res, err := tx.ExecContext(ctx, s.q.InsertPending, p.Origin, p.MediaID, p.UserID, p.CreatedAt.UnixMilli(), p.ExpiresAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return storage.ErrExists
		}
		return nil
	})
}

// Pending implements storage.ReservationStore.
func (s *Store) Pending(ctx context.Context, origin, mediaID string) (_ *storage.Pending, err error) {
	defer s.classify(&err)
	var p storage.Pending
	var created, expires int64
	err = s.db.QueryRowContext(ctx, s.q.SelectPending, origin, mediaID, time.Now().UnixMilli()).
		Scan(&p.Origin, &p.MediaID, &p.UserID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("select pending %s/%s: %w", origin, mediaID, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("select pending %s/%s: %w", origin, mediaID, err)
	}
	p.CreatedAt, p.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
	return &p, nil
}

// CompleteUpload implements storage.ReservationStore.
func (s *Store) CompleteUpload(ctx context.Context, m *storage.Media, q storage.Quota, publish storage.Publish) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "complete upload of "+m.Origin+"/"+m.MediaID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.DeletePending, m.Origin, m.MediaID, m.UserID, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			exists, err := rowExists(ctx, tx, s.q.MediaExists, m.Origin, m.MediaID)
			if err != nil {
				return err
			}
			if exists {
				return storage.ErrExists
			}
			return storage.ErrNotFound
		}
		if err := s.addMedia(ctx, tx, m, q, publish); err != nil {
			return err
		}
		if s.q.NotifyUploaded != "" {
			// Delivered at commit, so no listener hears of a rolled-back upload.
			if _, err := tx.ExecContext(ctx, s.q.NotifyUploaded, m.Origin+"/"+m.MediaID); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteExpiredPending implements storage.ReservationStore.
func (s *Store) DeleteExpiredPending(ctx context.Context, now time.Time) (_ int64, err error) {
	defer s.classify(&err)
	res, err := s.db.ExecContext(ctx, s.q.DeleteExpiredPending, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("delete expired reservations: %w", err)
	}
	return res.RowsAffected()
}

// URLPreview implements storage.PreviewStore.
func (s *Store) URLPreview(ctx context.Context, serverName, url string, bucket int64, lang string) (_ *storage.URLPreview, err error) {
	defer s.classify(&err)
	var p storage.URLPreview
	var created int64
	err = s.db.QueryRowContext(ctx, s.q.SelectURLPreview, serverName, url, bucket, lang).
		Scan(&p.ServerName, &p.URL, &p.Bucket, &p.Lang, &p.Status, &p.Errcode, &p.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("select url preview: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("select url preview: %w", err)
	}
	p.CreatedAt = time.UnixMilli(created)
	return &p, nil
}

// CreateURLPreview implements storage.PreviewStore.
func (s *Store) CreateURLPreview(ctx context.Context, p *storage.URLPreview) (err error) {
	defer s.classify(&err)
	_, err = s.db.ExecContext(ctx, s.q.InsertURLPreview, p.ServerName, p.URL, p.Bucket, p.Lang, p.Status, p.Errcode, p.Body, p.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert url preview: %w", err)
	}
	return nil
}

// DeleteURLPreviews implements storage.PreviewStore.
func (s *Store) DeleteURLPreviews(ctx context.Context, before time.Time) (_ int64, err error) {
	defer s.classify(&err)
	res, err := s.db.ExecContext(ctx, s.q.DeleteURLPreviews, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("delete url previews: %w", err)
	}
	return res.RowsAffected()
}

// SetBlurhash implements storage.MediaStore.
func (s *Store) SetBlurhash(ctx context.Context, origin, mediaID, hash string) (err error) {
	defer s.classify(&err)
	if _, err := s.db.ExecContext(ctx, s.a.setBlurhash, origin, mediaID, hash); err != nil {
		return fmt.Errorf("set blurhash of %s/%s: %w", origin, mediaID, err)
	}
	return nil
}

// BlobReferenced implements storage.RetentionStore.
func (s *Store) BlobReferenced(ctx context.Context, datastoreID, sha256 string) (_ bool, err error) {
	defer s.classify(&err)
	var one int
	err = s.db.QueryRowContext(ctx, s.a.blobReferenced, datastoreID, sha256).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for rows of blob %s: %w", sha256, err)
	}
	return true, nil
}

// classify marks an error that says the database cannot be used right now
// (down, restarting, full, read-only) with the storage sentinel for it, as
// the dialect tells, so the edge answers 503 or 507 instead of 500.
func (s *Store) classify(err *error) {
	if *err == nil || s.q.Classify == nil {
		return
	}
	if kind := s.q.Classify(*err); kind != nil && !errors.Is(*err, kind) {
		*err = fmt.Errorf("%w: %w", kind, *err)
	}
}

// inTx runs fn in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// lock takes the dialect's transaction lock on key, where it has one.
func (s *Store) lock(ctx context.Context, tx *sql.Tx, key string) error {
	if s.q.LockKey == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q.LockKey, key)
	return err
}

// blobLock is the lock key of a blob's bytes: what publishing them and
// deleting them both take.
func blobLock(sha256 string) string { return "blob:" + sha256 }

func rowExists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Close closes the database; calls after Close fail.
func (s *Store) Close() error { return s.db.Close() }

// DB is the database, for what the dialects add (NOTIFY) and for pool
// statistics and health checks.
func (s *Store) DB() *sql.DB { return s.db }

// scanMedia reads the columns of SelectMedia.
func scanMedia(row interface{ Scan(...any) error }) (*storage.Media, error) {
	var m storage.Media
	var created, accessed int64
	err := row.Scan(&m.Origin, &m.MediaID, &m.UploadName, &m.ContentType, &m.UserID, &m.SHA256,
		&m.SizeBytes, &m.DatastoreID, &created, &m.Authenticated, &m.QuarantinedBy, &m.Protected, &accessed, &m.Blurhash)
	if err != nil {
		return nil, err
	}
	m.CreatedAt = time.UnixMilli(created)
	if accessed > 0 {
		m.LastAccess = time.UnixMilli(accessed)
	}
	return &m, nil
}
