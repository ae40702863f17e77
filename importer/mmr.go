package importer

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mediarepo/mediarepo/mxid"
)

// MMR reads matrix-media-repo's database (PostgreSQL): media, thumbnails,
// datastores, media_attributes (purpose pinned) and last_access, and the
// files of its file datastores (location under the datastore's uri).
type MMR struct {
	db *sourceDB
	// paths are the directories of the datastores by ID: the datastores
	// table's uri for file datastores, or what the operator gives.
	paths map[string]string
	// unreadable names datastores whose files cannot be read from here
	// (S3 without a local copy), by ID.
	unreadable map[string]string
}

// OpenMMR opens matrix-media-repo's database; paths override datastore
// directories by ID (an S3 bucket synced to disk, a moved volume).
func OpenMMR(ctx context.Context, dsn string, paths map[string]string) (*MMR, error) {
	db, err := openSource(ctx, dsn)
	if err != nil {
		return nil, err
	}
	m := &MMR{db: db, paths: map[string]string{}, unreadable: map[string]string{}}
	err = db.query(ctx, `SELECT datastore_id, ds_type, uri FROM datastores`, func(r *sql.Rows) error {
		var id, kind, uri string
		if err := r.Scan(&id, &kind, &uri); err != nil {
			return err
		}
		switch p, ok := paths[id]; {
		case ok:
			m.paths[id] = p
		case kind == "file":
			m.paths[id] = uri
		default:
			m.unreadable[id] = fmt.Sprintf("in %s datastore %s (%s): give a local copy with -datastore %s=DIR", kind, id, uri, id)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// Name implements Source.
func (m *MMR) Name() string { return "matrix-media-repo media" }

// Close implements Source.
func (m *MMR) Close() error { return m.db.Close() }

// Count implements Source.
func (m *MMR) Count(ctx context.Context) (items, bytes int64, err error) {
	return m.db.count(ctx, "media", "size_bytes")
}

// Items implements Source.
func (m *MMR) Items(ctx context.Context, fn func(Item) error) error {
	have, err := m.db.columns(ctx, "media")
	if err != nil {
		return err
	}
	// Tables of later versions stand in as nothing where they are missing.
	purpose, accessed := "''", "0"
	if _, err := m.db.columns(ctx, "media_attributes"); err == nil {
		purpose = `COALESCE((SELECT a.purpose FROM media_attributes a WHERE a.origin = m.origin AND a.media_id = m.media_id), '')`
	}
	if _, err := m.db.columns(ctx, "last_access"); err == nil {
		accessed = `COALESCE((SELECT MAX(l.last_access_ts) FROM last_access l WHERE l.sha256_hash = m.sha256_hash), 0)`
	}
	q := `SELECT m.origin, m.media_id, m.upload_name, m.content_type, m.user_id, m.sha256_hash, m.size_bytes,
		m.datastore_id, m.location, m.creation_ts, ` + col(have, "quarantined", "false") + `, ` + col(have, "compressed", "false") + `,
		` + purpose + `, ` + accessed + ` FROM media m ORDER BY m.creation_ts, m.origin, m.media_id`
	thumbs, err := m.db.prepare(ctx, `SELECT width, height, method, animated, content_type, datastore_id, location, creation_ts,
		`+col(have, "compressed", "false")+` FROM thumbnails WHERE origin = $1 AND media_id = $2`)
	if err != nil {
		return err
	}
	defer thumbs.Close()
	return m.db.query(ctx, q, func(r *sql.Rows) error {
		var it Item
		var ds, location, purpose string
		var created, accessed int64
		var quarantined bool
		if err := r.Scan(&it.Origin, &it.MediaID, &it.UploadName, &it.ContentType, &it.UserID, &it.SHA256, &it.Size,
			&ds, &location, &created, &quarantined, &it.Gzipped, &purpose, &accessed); err != nil {
			return err
		}
		it.Created = time.UnixMilli(created)
		if accessed > 0 {
			it.LastAccess = time.UnixMilli(accessed)
		}
		if quarantined {
			it.QuarantinedBy = "matrix-media-repo"
		}
		it.Protected = purpose == "pinned"
		if !mxid.ValidServerName(it.Origin) || !mxid.ValidMediaID(it.MediaID) {
			it.Skip = "an invalid origin or media ID"
			return fn(it)
		}
		it.Path = m.path(ds, location)
		if it.Path == "" {
			it.Path = m.unreadable[ds]
			if it.Path == "" {
				it.Path = "in unknown datastore " + ds
			}
		}
		if it.Thumbs, err = m.thumbnails(ctx, thumbs, it.Origin, it.MediaID); err != nil {
			return err
		}
		return fn(it)
	})
}

// path is where a file of datastore ds at location is: under the
// datastore's directory, or location itself where it is absolute (older
// versions stored whole paths).
func (m *MMR) path(ds, location string) string {
	if filepath.IsAbs(location) {
		return location
	}
	dir, ok := m.paths[ds]
	if !ok {
		return ""
	}
	return filepath.Join(dir, location)
}

func (m *MMR) thumbnails(ctx context.Context, stmt *sql.Stmt, origin, mediaID string) ([]Thumb, error) {
	rows, err := stmt.QueryContext(ctx, origin, mediaID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Thumb
	for rows.Next() {
		var th Thumb
		var ds, location string
		var created int64
		var compressed bool
		if err := rows.Scan(&th.Width, &th.Height, &th.Method, &th.Animated, &th.ContentType, &ds, &location, &created, &compressed); err != nil {
			return nil, err
		}
		if compressed {
			continue // made again on demand
		}
		th.Created, th.Path = time.UnixMilli(created), m.path(ds, location)
		if th.Path != "" {
			out = append(out, th)
		}
	}
	return out, rows.Err()
}
