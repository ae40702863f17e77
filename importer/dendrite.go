package importer

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mediarepo/mediarepo/mxid"
)

// Dendrite reads Dendrite's media API: mediaapi_media_repository and
// mediaapi_thumbnail (PostgreSQL or SQLite), and the files under its
// base_path, kept by the URL-safe base64 of their SHA-256:
// <h[0]>/<h[1]>/<h[2:]>/file, with thumbnail-<w>x<h>-<method> beside it.
type Dendrite struct {
	db       *sourceDB
	basePath string
}

// OpenDendrite opens Dendrite's media API database (dsn) and base path.
func OpenDendrite(ctx context.Context, dsn, basePath string) (*Dendrite, error) {
	db, err := openSource(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Dendrite{db: db, basePath: basePath}, nil
}

// Name implements Source.
func (d *Dendrite) Name() string { return "Dendrite media at " + d.basePath }

// Close implements Source.
func (d *Dendrite) Close() error { return d.db.Close() }

// Count implements Source.
func (d *Dendrite) Count(ctx context.Context) (items, bytes int64, err error) {
	return d.db.count(ctx, "mediaapi_media_repository", "file_size_bytes")
}

// Items implements Source.
func (d *Dendrite) Items(ctx context.Context, fn func(Item) error) error {
	q := `SELECT media_id, media_origin, content_type, file_size_bytes, creation_ts, upload_name, base64hash, user_id
		FROM mediaapi_media_repository ORDER BY creation_ts, media_origin, media_id`
	thumbs, err := d.db.prepare(ctx, `SELECT width, height, resize_method, content_type, creation_ts FROM mediaapi_thumbnail
		WHERE media_id = $1 AND media_origin = $2`)
	if err != nil {
		return err
	}
	defer thumbs.Close()
	return d.db.query(ctx, q, func(r *sql.Rows) error {
		var it Item
		var created int64
		var hash string
		var uploadName, userID sql.NullString
		if err := r.Scan(&it.MediaID, &it.Origin, &it.ContentType, &it.Size, &created, &uploadName, &hash, &userID); err != nil {
			return err
		}
		// Dendrite keeps upload names path-escaped ("a%20b.png").
		it.UploadName, it.UserID = uploadName.String, userID.String
		if name, err := url.PathUnescape(it.UploadName); err == nil {
			it.UploadName = name
		}
		it.Created = time.UnixMilli(created)
		sum, err := base64.RawURLEncoding.DecodeString(hash)
		if err != nil || len(sum) != 32 || !mxid.ValidServerName(it.Origin) || !mxid.ValidMediaID(it.MediaID) {
			it.Skip = "an invalid origin, media ID or hash"
			return fn(it)
		}
		it.SHA256 = hex.EncodeToString(sum)
		dir := filepath.Join(d.basePath, hash[0:1], hash[1:2], hash[2:])
		it.Path = filepath.Join(dir, "file")
		if it.Thumbs, err = d.thumbnails(ctx, thumbs, dir, it.MediaID, it.Origin); err != nil {
			return fmt.Errorf("thumbnails of %s/%s: %w", it.Origin, it.MediaID, err)
		}
		return fn(it)
	})
}

func (d *Dendrite) thumbnails(ctx context.Context, stmt *sql.Stmt, dir string, key ...any) ([]Thumb, error) {
	rows, err := stmt.QueryContext(ctx, key...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Thumb
	for rows.Next() {
		var th Thumb
		var created int64
		if err := rows.Scan(&th.Width, &th.Height, &th.Method, &th.ContentType, &created); err != nil {
			return nil, err
		}
		th.Created = time.UnixMilli(created)
		th.Path = filepath.Join(dir, "thumbnail-"+strconv.Itoa(th.Width)+"x"+strconv.Itoa(th.Height)+"-"+th.Method)
		out = append(out, th)
	}
	return out, rows.Err()
}
