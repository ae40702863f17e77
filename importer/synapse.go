package importer

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/mxid"
)

// Synapse reads Synapse's media repository: local_media_repository and
// remote_media_cache with their thumbnail tables (PostgreSQL or SQLite),
// and the files under its media_store_path: local_content/aa/bb/rest,
// remote_content/<origin>/aa/bb/rest (by filesystem_id), local_thumbnails/
// and remote_thumbnail/ with one file per size, named
// <w>-<h>-<top>-<sub>[-<method>].
type Synapse struct {
	db         *sourceDB
	store      string // media_store_path
	serverName string // Synapse's server_name: the origin of its local media
}

// OpenSynapse opens Synapse's database (dsn) and media store.
func OpenSynapse(ctx context.Context, dsn, mediaStore, serverName string) (*Synapse, error) {
	if !mxid.ValidServerName(serverName) {
		return nil, fmt.Errorf("server name %q is not valid", serverName)
	}
	db, err := openSource(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Synapse{db: db, store: mediaStore, serverName: serverName}, nil
}

// Name implements Source.
func (s *Synapse) Name() string { return "Synapse media of " + s.serverName }

// Close implements Source.
func (s *Synapse) Close() error { return s.db.Close() }

// Count implements Source.
func (s *Synapse) Count(ctx context.Context) (items, bytes int64, err error) {
	for _, table := range []string{"local_media_repository", "remote_media_cache"} {
		n, b, err := s.db.count(ctx, table, "media_length")
		if err != nil {
			return 0, 0, err
		}
		items, bytes = items+n, bytes+b
	}
	return items, bytes, nil
}

// Items implements Source: local media first, then cached remote media.
func (s *Synapse) Items(ctx context.Context, fn func(Item) error) error {
	if err := s.local(ctx, fn); err != nil {
		return err
	}
	return s.remote(ctx, fn)
}

func (s *Synapse) local(ctx context.Context, fn func(Item) error) error {
	have, err := s.db.columns(ctx, "local_media_repository")
	if err != nil {
		return err
	}
	q := `SELECT media_id, ` + col(have, "media_type", "''") + `, ` + col(have, "media_length", "-1") + `, created_ts, ` +
		col(have, "upload_name", "NULL") + `, ` + col(have, "user_id", "NULL") + `, ` + col(have, "quarantined_by", "NULL") + `, ` +
		col(have, "url_cache", "NULL") + `, ` + col(have, "last_access_ts", "NULL") + `, ` +
		col(have, "safe_from_quarantine", "false") + `, ` + col(have, "authenticated", "false") + `, ` + col(have, "sha256", "NULL") +
		` FROM local_media_repository ORDER BY created_ts, media_id`
	thumbs, err := s.thumbStatement(ctx, false)
	if err != nil {
		return err
	}
	defer thumbs.Close()
	return s.db.query(ctx, q, func(r *sql.Rows) error {
		var it Item
		var created int64
		var uploadName, userID, quarantinedBy, urlCache, sha sql.NullString
		var lastAccess sql.NullInt64
		var contentType sql.NullString
		var protected, authenticated sql.NullBool
		if err := r.Scan(&it.MediaID, &contentType, &it.Size, &created, &uploadName, &userID, &quarantinedBy,
			&urlCache, &lastAccess, &protected, &authenticated, &sha); err != nil {
			return err
		}
		it.Origin = s.serverName
		it.ContentType, it.UploadName, it.UserID = contentType.String, uploadName.String, userID.String
		it.QuarantinedBy, it.SHA256 = quarantinedBy.String, sha.String
		it.Protected, it.Authenticated = protected.Bool, authenticated.Bool
		it.Created = time.UnixMilli(created)
		if lastAccess.Valid && lastAccess.Int64 > 0 {
			it.LastAccess = time.UnixMilli(lastAccess.Int64)
		}
		switch {
		case urlCache.Valid && urlCache.String != "":
			it.Skip = "a URL preview's cached image"
		case !mxid.ValidMediaID(it.MediaID) || len(it.MediaID) < 5:
			it.Skip = "an invalid media ID"
		default:
			it.Path = filepath.Join(s.store, "local_content", it.MediaID[0:2], it.MediaID[2:4], it.MediaID[4:])
			dir := filepath.Join(s.store, "local_thumbnails", it.MediaID[0:2], it.MediaID[2:4], it.MediaID[4:])
			if it.Thumbs, err = s.thumbnails(ctx, thumbs, dir, it.Created, it.MediaID); err != nil {
				return err
			}
		}
		return fn(it)
	})
}

func (s *Synapse) remote(ctx context.Context, fn func(Item) error) error {
	have, err := s.db.columns(ctx, "remote_media_cache")
	if err != nil {
		return err
	}
	q := `SELECT media_origin, media_id, ` + col(have, "media_type", "''") + `, ` + col(have, "media_length", "-1") + `, created_ts, ` +
		col(have, "upload_name", "NULL") + `, filesystem_id, ` + col(have, "quarantined_by", "NULL") + `, ` +
		col(have, "last_access_ts", "NULL") + `, ` + col(have, "authenticated", "false") + `, ` + col(have, "sha256", "NULL") +
		` FROM remote_media_cache ORDER BY created_ts, media_origin, media_id`
	thumbs, err := s.thumbStatement(ctx, true)
	if err != nil {
		return err
	}
	defer thumbs.Close()
	return s.db.query(ctx, q, func(r *sql.Rows) error {
		var it Item
		var created int64
		var fsID string
		var contentType, uploadName, quarantinedBy, sha sql.NullString
		var lastAccess sql.NullInt64
		var authenticated sql.NullBool
		if err := r.Scan(&it.Origin, &it.MediaID, &contentType, &it.Size, &created, &uploadName, &fsID, &quarantinedBy,
			&lastAccess, &authenticated, &sha); err != nil {
			return err
		}
		it.ContentType, it.UploadName, it.QuarantinedBy, it.SHA256 = contentType.String, uploadName.String, quarantinedBy.String, sha.String
		it.Authenticated = authenticated.Bool
		it.Created = time.UnixMilli(created)
		if lastAccess.Valid && lastAccess.Int64 > 0 {
			it.LastAccess = time.UnixMilli(lastAccess.Int64)
		}
		if !mxid.ValidServerName(it.Origin) || !mxid.ValidMediaID(it.MediaID) || len(fsID) < 5 || strings.ContainsAny(fsID, "/\\") {
			it.Skip = "an invalid origin, media ID or filesystem ID"
			return fn(it)
		}
		it.Path = filepath.Join(s.store, "remote_content", it.Origin, fsID[0:2], fsID[2:4], fsID[4:])
		dir := filepath.Join(s.store, "remote_thumbnail", it.Origin, fsID[0:2], fsID[2:4], fsID[4:])
		if it.Thumbs, err = s.thumbnails(ctx, thumbs, dir, it.Created, it.Origin, it.MediaID); err != nil {
			return err
		}
		return fn(it)
	})
}

// thumbStatement prepares the query of one media's thumbnails.
func (s *Synapse) thumbStatement(ctx context.Context, remote bool) (*sql.Stmt, error) {
	q := `SELECT thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method FROM local_media_repository_thumbnails WHERE media_id = $1`
	if remote {
		q = `SELECT thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method FROM remote_media_cache_thumbnails WHERE media_origin = $1 AND media_id = $2`
	}
	return s.db.prepare(ctx, q)
}

// thumbnails lists a media's thumbnails, with the file each is in: Synapse
// names them <w>-<h>-<top>-<sub>-<method>, and before it kept the method
// in the name, <w>-<h>-<top>-<sub>.
func (s *Synapse) thumbnails(ctx context.Context, stmt *sql.Stmt, dir string, created time.Time, key ...any) ([]Thumb, error) {
	rows, err := stmt.QueryContext(ctx, key...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Thumb
	for rows.Next() {
		var th Thumb
		if err := rows.Scan(&th.Width, &th.Height, &th.ContentType, &th.Method); err != nil {
			return nil, err
		}
		top, sub, _ := strings.Cut(th.ContentType, "/")
		name := strconv.Itoa(th.Width) + "-" + strconv.Itoa(th.Height) + "-" + top + "-" + sub
		th.Path = filepath.Join(dir, name+"-"+th.Method)
		if !fileExists(th.Path) {
			th.Path = filepath.Join(dir, name)
		}
		th.Created = created
		out = append(out, th)
	}
	return out, rows.Err()
}
