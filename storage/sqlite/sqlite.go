// Package sqlite is the embedded SQLite metadata store (modernc.org/sqlite,
// pure Go). It owns its SQL text and how the database is opened; the queries
// run in sqlstore and the schema comes from migrations. It imports storage,
// sqlstore, migrations, config.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite" // the driver, registered as "sqlite"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/migrations"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/sqlstore"
)

var (
	_ storage.MediaStore       = (*Store)(nil)
	_ storage.ThumbnailStore   = (*Store)(nil)
	_ storage.ReservationStore = (*Store)(nil)
	_ storage.PreviewStore     = (*Store)(nil)
)

// queries are this dialect's SQL text for the shared engine.
var queries = sqlstore.Queries{
	InsertMedia: `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (origin, media_id) DO NOTHING`,
	SelectMedia: `SELECT m.origin, m.media_id, m.upload_name, m.content_type, m.user_id, m.sha256,
		m.size_bytes, m.datastore_id, m.created_ts, m.authenticated,
		COALESCE((SELECT q.quarantined_by FROM quarantined_hashes q
			WHERE q.sha256 = m.sha256 AND q.scope IN ('', m.origin) ORDER BY q.scope LIMIT 1), ''),
		m.protected, m.last_access_ts, m.blurhash
		FROM media m WHERE m.origin = ? AND m.media_id = ?`,
	InsertThumbnail: `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type,
		sha256, size_bytes, datastore_id, created_ts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
	SelectThumbnails: `SELECT origin, media_id, width, height, method, animated, content_type, sha256,
		size_bytes, datastore_id, created_ts
		FROM thumbnails WHERE origin = ? AND media_id = ?
		ORDER BY width, height, method, animated, content_type`,
	LockKey:      ``,
	CountPending: `SELECT COUNT(*), MIN(expires_ts) FROM pending_media WHERE user_id = ? AND expires_ts > ?`,
	MediaExists:  `SELECT 1 FROM media WHERE origin = ? AND media_id = ?`,
	InsertPending: `INSERT INTO pending_media (origin, media_id, user_id, created_ts, expires_ts)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
	SelectPending: `SELECT origin, media_id, user_id, created_ts, expires_ts FROM pending_media
		WHERE origin = ? AND media_id = ? AND expires_ts > ?`,
	DeletePending: `DELETE FROM pending_media
		WHERE origin = ? AND media_id = ? AND user_id = ? AND expires_ts > ?`,
	DeleteExpiredPending: `DELETE FROM pending_media WHERE expires_ts <= ?`,
	EnsureUsage:          `INSERT INTO user_usage (user_id) VALUES (?) ON CONFLICT DO NOTHING`,
	SelectUsageForUpdate: `SELECT bytes, files FROM user_usage WHERE user_id = ?`, // BEGIN IMMEDIATE holds the lock
	AddUsage:             `UPDATE user_usage SET bytes = bytes + ?2, files = files + ?3 WHERE user_id = ?1`,
	SelectUsage:          `SELECT bytes, files FROM user_usage WHERE user_id = ?`,
	InsertURLPreview: `INSERT INTO url_previews (server_name, url, bucket, lang, status, errcode, body, created_ts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
	SelectURLPreview: `SELECT server_name, url, bucket, lang, status, errcode, body, created_ts FROM url_previews
		WHERE server_name = ? AND url = ? AND bucket = ? AND lang = ?`,
	DeleteURLPreviews: `DELETE FROM url_previews WHERE created_ts < ?`,
	NotifyUploaded:    ``,
	Param:             "?",
	Classify:          classify,
}

// SQLite result codes (the primary code is the low byte of an extended one).
const (
	codeBusy     = 5
	codeLocked   = 6
	codeReadOnly = 8
	codeIOErr    = 10
	codeFull     = 13
	codeCantOpen = 14
)

// classify tells the errors of a database file that cannot be used right
// now: still locked after busy_timeout, an I/O error or a file that cannot be
// opened, a full disk, a read-only file or file system.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() & 0xff {
	case codeFull:
		return storage.ErrFull
	case codeReadOnly:
		return storage.ErrReadOnly
	case codeBusy, codeLocked, codeIOErr, codeCantOpen:
		return storage.ErrUnavailable
	}
	return nil
}

// Store implements every storage metadata interface on SQLite.
type Store struct {
	*sqlstore.Store
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
	return &Store{sqlstore.New(db, queries)}, applied, nil
}
