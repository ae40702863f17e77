// Package postgres is the PostgreSQL metadata store (lib/pq). It owns its SQL
// text and how the database is opened; the queries run in sqlstore and the schema
// comes from migrations. It imports storage, sqlstore, migrations, config.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"

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

// The LISTEN/NOTIFY channels: completed uploads, and changes every process's
// caches must see.
const (
	uploadsChannel = "mediarepo_uploads"
	eventsChannel  = "mediarepo_events"
)

// queries are this dialect's SQL text for the shared engine.
var queries = sqlstore.Queries{
	InsertMedia: `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (origin, media_id) DO NOTHING`,
	SelectMedia: `SELECT m.origin, m.media_id, m.upload_name, m.content_type, m.user_id, m.sha256,
		m.size_bytes, m.datastore_id, m.created_ts, m.authenticated,
		COALESCE((SELECT q.quarantined_by FROM quarantined_hashes q
			WHERE q.sha256 = m.sha256 AND q.scope IN ('', m.origin) ORDER BY q.scope LIMIT 1), ''),
		m.protected, m.last_access_ts, m.blurhash
		FROM media m WHERE m.origin = $1 AND m.media_id = $2`,
	InsertThumbnail: `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type,
		sha256, size_bytes, datastore_id, created_ts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`,
	SelectThumbnails: `SELECT origin, media_id, width, height, method, animated, content_type, sha256,
		size_bytes, datastore_id, created_ts
		FROM thumbnails WHERE origin = $1 AND media_id = $2
		ORDER BY width, height, method, animated, content_type`,
	LockKey:      `SELECT pg_advisory_xact_lock(hashtext($1))`,
	CountPending: `SELECT COUNT(*), MIN(expires_ts) FROM pending_media WHERE user_id = $1 AND expires_ts > $2`,
	MediaExists:  `SELECT 1 FROM media WHERE origin = $1 AND media_id = $2`,
	InsertPending: `INSERT INTO pending_media (origin, media_id, user_id, created_ts, expires_ts)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
	SelectPending: `SELECT origin, media_id, user_id, created_ts, expires_ts FROM pending_media
		WHERE origin = $1 AND media_id = $2 AND expires_ts > $3`,
	DeletePending: `DELETE FROM pending_media
		WHERE origin = $1 AND media_id = $2 AND user_id = $3 AND expires_ts > $4`,
	DeleteExpiredPending: `DELETE FROM pending_media WHERE expires_ts <= $1`,
	EnsureUsage:          `INSERT INTO user_usage (user_id) VALUES ($1) ON CONFLICT DO NOTHING`,
	SelectUsageForUpdate: `SELECT bytes, files FROM user_usage WHERE user_id = $1 FOR UPDATE`,
	AddUsage:             `UPDATE user_usage SET bytes = bytes + $2, files = files + $3 WHERE user_id = $1`,
	SelectUsage:          `SELECT bytes, files FROM user_usage WHERE user_id = $1`,
	InsertURLPreview: `INSERT INTO url_previews (server_name, url, bucket, lang, status, errcode, body, created_ts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
	SelectURLPreview: `SELECT server_name, url, bucket, lang, status, errcode, body, created_ts FROM url_previews
		WHERE server_name = $1 AND url = $2 AND bucket = $3 AND lang = $4`,
	DeleteURLPreviews: `DELETE FROM url_previews WHERE created_ts < $1`,
	NotifyUploaded:    `SELECT pg_notify('` + uploadsChannel + `', $1)`,
	Param:             "$",
	Classify:          classify,
}

// classify tells the errors of a database that cannot be used right now:
// connection exceptions (class 08), insufficient resources (53: disk full is
// 53100), operator intervention (57: shutting down, starting up), a
// read-only transaction (25006), and failures to reach the server at all.
func classify(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch {
		case pqErr.Code == "53100":
			return storage.ErrFull
		case pqErr.Code == "25006":
			return storage.ErrReadOnly
		case pqErr.Code.Class() == "08", pqErr.Code.Class() == "53", pqErr.Code.Class() == "57":
			return storage.ErrUnavailable
		}
		return nil
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return storage.ErrUnavailable
	}
	return nil
}

// Store implements every storage metadata interface on PostgreSQL.
type Store struct {
	*sqlstore.Store
	dsn string // for LISTEN, which needs a connection of its own
}

var (
	_ storage.UploadWatcher = (*Store)(nil)
	_ storage.Broadcaster   = (*Store)(nil)
)

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
	return &Store{Store: sqlstore.New(db, queries), dsn: dsn}, applied, nil
}

// WatchUploads implements storage.UploadWatcher with LISTEN on its own
// connection; lib/pq's Listener reconnects by itself.
func (s *Store) WatchUploads(ctx context.Context, fn func(origin, mediaID string)) error {
	return s.listen(ctx, uploadsChannel, func(payload string) {
		if origin, mediaID, ok := strings.Cut(payload, "/"); ok {
			fn(origin, mediaID)
		}
	})
}

// Broadcast implements storage.Broadcaster with NOTIFY.
func (s *Store) Broadcast(ctx context.Context, topic, payload string) error {
	if _, err := s.DB().ExecContext(ctx, `SELECT pg_notify('`+eventsChannel+`', $1)`, topic+"\n"+payload); err != nil {
		return fmt.Errorf("notify %s: %w", topic, err)
	}
	return nil
}

// WatchBroadcasts implements storage.Broadcaster with LISTEN.
func (s *Store) WatchBroadcasts(ctx context.Context, fn func(topic, payload string)) error {
	return s.listen(ctx, eventsChannel, func(payload string) {
		if topic, rest, ok := strings.Cut(payload, "\n"); ok {
			fn(topic, rest)
		}
	})
}

// listen calls fn with every notification on channel until ctx is done, on
// a connection of its own that lib/pq's Listener reconnects by itself.
func (s *Store) listen(ctx context.Context, channel string, fn func(payload string)) error {
	l := pq.NewListener(s.dsn, time.Second, 30*time.Second, nil)
	defer l.Close()
	if err := l.Listen(channel); err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	ping := time.NewTicker(time.Minute)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ping.C:
			l.Ping() // notices a dead connection; reconnection is automatic
		case n := <-l.Notify:
			if n == nil {
				continue // reconnected: what was missed meanwhile is lost, and the caches' TTLs bound it
			}
			fn(n.Extra)
		}
	}
}
