// Package postgres is the PostgreSQL MetadataStore (lib/pq). It owns its SQL
// text and how the database is opened; the queries run in sqlstore and the schema
// comes from migrations. It imports storage, sqlstore, migrations, config.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/lib/pq" // registers the "postgres" driver

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/migrations"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/sqlstore"
)

var _ storage.MetadataStore = (*Store)(nil)

// queries are this dialect's SQL text for the shared engine.
var queries = sqlstore.Queries{
	InsertMedia: `INSERT INTO media (origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (origin, media_id) DO NOTHING`,
	SelectMedia: `SELECT origin, media_id, upload_name, content_type, user_id, sha256,
		size_bytes, datastore_id, created_ts, authenticated
		FROM media WHERE origin = $1 AND media_id = $2`,
	InsertThumbnail: `INSERT INTO thumbnails (origin, media_id, width, height, method, animated, content_type,
		sha256, size_bytes, datastore_id, created_ts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING`,
	SelectThumbnails: `SELECT origin, media_id, width, height, method, animated, content_type, sha256,
		size_bytes, datastore_id, created_ts
		FROM thumbnails WHERE origin = $1 AND media_id = $2
		ORDER BY width, height, method, animated, content_type`,
}

// Store is a MetadataStore on PostgreSQL.
type Store struct {
	*sqlstore.Store
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
	return &Store{sqlstore.New(db, queries)}, applied, nil
}
