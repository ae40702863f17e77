package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

var (
	_ storage.CatalogStore    = (*Store)(nil)
	_ storage.TotalsStore     = (*Store)(nil)
	_ storage.ModerationStore = (*Store)(nil)
	_ storage.PurgeStore      = (*Store)(nil)
	_ storage.TaskStore       = (*Store)(nil)
	_ storage.LeaseStore      = (*Store)(nil)
	_ storage.AccessStore     = (*Store)(nil)
)

// adminQueries are the queries of the admin stores. Both dialects take the
// same SQL here; only placeholders differ, so they are written once with $n
// and rewritten for the dialect.
type adminQueries struct {
	param string

	hashQuarantined, purged                         string
	quarantine, newlyCovered, setProtected          string
	unquarantine, unquarantineAll                   string
	selectForDelete, deleteMedia, tombstone         string
	thumbBlobsOf, deleteThumbsOf                    string
	thumbBlobsBefore, deleteThumbsBefore            string
	blobReferenced                                  string
	serverMedia, serverThumbs                       string
	insertTask, finishTask, selectTasks, selectTask string
	setBlurhash                                     string
	taskProgress                                    string
	acquireLease, releaseLease, recordAccess        string
	leaseHolder                                     string
	estimateMedia, estimateThumbs, estimateAll      string
	insertExport, insertExportPart, selectExport    string
	selectExportParts, deleteExport, deleteParts    string
	transferBlobs, moveMedia, moveThumbs, moveParts string
}

// quarantineOf selects the quarantines that cover media m: of its bytes,
// everywhere or on its own origin.
const quarantineOf = `FROM quarantined_hashes q WHERE q.sha256 = m.sha256 AND q.scope IN ('', m.origin)`

// mediaColumns are SelectMedia's columns, on media m.
const mediaColumns = `m.origin, m.media_id, m.upload_name, m.content_type, m.user_id, m.sha256,
	m.size_bytes, m.datastore_id, m.created_ts, m.authenticated,
	COALESCE((SELECT q.quarantined_by ` + quarantineOf + ` ORDER BY q.scope LIMIT 1), ''),
	m.protected, m.last_access_ts, m.blurhash`

const mediaFrom = ` FROM media m`

// blobReferenced finds a row referring to a blob ($1 datastore, $2 sha256):
// of a media, a thumbnail or an export's part.
const blobReferenced = `SELECT 1 FROM media WHERE datastore_id = $1 AND sha256 = $2
	UNION ALL SELECT 1 FROM thumbnails WHERE datastore_id = $1 AND sha256 = $2
	UNION ALL SELECT 1 FROM export_parts WHERE datastore_id = $1 AND sha256 = $2 LIMIT 1`

// What a transfer from datastore $1 of rows idle before $2 selects: media
// by their own idle time, thumbnails by their media's (or, orphaned,
// always), export parts by their export's creation.
const (
	transferMedia  = `m.datastore_id = $1 AND ` + idle + ` < $2`
	transferThumbs = `t.datastore_id = $1 AND NOT EXISTS (SELECT 1 FROM media m
		WHERE m.origin = t.origin AND m.media_id = t.media_id AND ` + idle + ` >= $2)`
	transferParts = `p.datastore_id = $1 AND EXISTS (SELECT 1 FROM exports e
		WHERE e.export_id = p.export_id AND e.created_ts < $2)`
)

// idle is when media was last used: its last access, or its creation if it
// was never accessed.
const idle = `CASE WHEN m.last_access_ts > 0 THEN m.last_access_ts ELSE m.created_ts END`

func newAdminQueries(param string) adminQueries {
	r := func(q string) string { return rebind(q, param) }
	idleMedia := `FROM media WHERE datastore_id = $1 AND last_access_ts > 0 AND last_access_ts < $2`
	idleThumbs := `FROM thumbnails t JOIN media m ON m.origin = t.origin AND m.media_id = t.media_id
		WHERE t.datastore_id = $1 AND m.last_access_ts > 0 AND m.last_access_ts < $2`
	return adminQueries{
		param:           param,
		hashQuarantined: r(`SELECT 1 FROM quarantined_hashes WHERE sha256 = $1 AND scope IN ('', $2)`),
		purged:          r(`SELECT 1 FROM purged_media WHERE origin = $1 AND media_id = $2`),
		// Media the quarantine of $1 with scope $2 would newly cover.
		newlyCovered: r(`SELECT COUNT(*) FROM media m WHERE m.sha256 = $1 AND ($2 = '' OR m.origin = $2)
			AND NOT EXISTS (SELECT 1 ` + quarantineOf + `)`),
		quarantine: r(`INSERT INTO quarantined_hashes (sha256, scope, quarantined_by, created_ts)
			SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT)
			WHERE NOT EXISTS (SELECT 1 FROM media WHERE sha256 = $1 AND protected AND ($2 = '' OR origin = $2))
			ON CONFLICT DO NOTHING`),
		unquarantineAll: r(`DELETE FROM quarantined_hashes WHERE sha256 = $1`),
		unquarantine:    r(`DELETE FROM quarantined_hashes WHERE sha256 = $1 AND scope = $2`),
		setProtected:    r(`UPDATE media SET protected = $3 WHERE origin = $1 AND media_id = $2`),
		selectForDelete: r(`SELECT ` + mediaColumns + mediaFrom +
			` WHERE m.origin = $1 AND m.media_id = $2`),
		deleteMedia:        r(`DELETE FROM media WHERE origin = $1 AND media_id = $2`),
		tombstone:          r(`INSERT INTO purged_media (origin, media_id, purged_ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
		thumbBlobsOf:       r(`SELECT datastore_id, sha256 FROM thumbnails WHERE origin = $1 AND media_id = $2 AND created_ts < $3`),
		deleteThumbsOf:     r(`DELETE FROM thumbnails WHERE origin = $1 AND media_id = $2 AND created_ts < $3`),
		thumbBlobsBefore:   r(`SELECT DISTINCT datastore_id, sha256 FROM thumbnails WHERE created_ts < $1`),
		deleteThumbsBefore: r(`DELETE FROM thumbnails WHERE created_ts < $1`),
		blobReferenced:     r(blobReferenced),
		serverMedia:        r(`SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM media WHERE origin = $1`),
		serverThumbs:       r(`SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM thumbnails WHERE origin = $1`),
		insertExport:       r(`INSERT INTO exports (export_id, entity, task_id, created_ts) VALUES ($1, $2, $3, $4)`),
		insertExportPart:   r(`INSERT INTO export_parts (export_id, part_index, name, size_bytes, sha256, datastore_id) VALUES ($1, $2, $3, $4, $5, $6)`),
		selectExport:       r(`SELECT entity, task_id, created_ts FROM exports WHERE export_id = $1`),
		selectExportParts:  r(`SELECT part_index, name, size_bytes, sha256, datastore_id FROM export_parts WHERE export_id = $1 ORDER BY part_index`),
		deleteExport:       r(`DELETE FROM exports WHERE export_id = $1`),
		deleteParts:        r(`DELETE FROM export_parts WHERE export_id = $1`),
		insertTask:         r(`INSERT INTO tasks (name, params, start_ts) VALUES ($1, $2, $3) RETURNING task_id`),
		finishTask:         r(`UPDATE tasks SET end_ts = $2, error = $3 WHERE task_id = $1`),
		selectTasks:        `SELECT task_id, name, params, start_ts, end_ts, error, progress FROM tasks`,
		selectTask:         r(`SELECT task_id, name, params, start_ts, end_ts, error, progress FROM tasks WHERE task_id = $1`),
		taskProgress:       r(`UPDATE tasks SET progress = $2 WHERE task_id = $1`),
		acquireLease: r(`INSERT INTO leases (name, holder, expires_ts) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ts = excluded.expires_ts
			WHERE leases.holder = excluded.holder OR leases.expires_ts < $4`),
		releaseLease: r(`DELETE FROM leases WHERE name = $1 AND holder = $2`),
		leaseHolder:  r(`SELECT holder FROM leases WHERE name = $1 AND expires_ts >= $2`),
		setBlurhash:  r(`UPDATE media SET blurhash = $3 WHERE origin = $1 AND media_id = $2`),
		recordAccess: r(`UPDATE media SET last_access_ts = $3 WHERE origin = $1 AND media_id = $2 AND last_access_ts < $3`),
		estimateMedia: r(`SELECT COUNT(*), COUNT(DISTINCT sha256),
			COALESCE((SELECT SUM(s) FROM (SELECT MAX(size_bytes) AS s ` + idleMedia + ` GROUP BY sha256) b), 0) ` + idleMedia),
		estimateThumbs: r(`SELECT COUNT(*), COUNT(DISTINCT t.sha256),
			COALESCE((SELECT SUM(s) FROM (SELECT MAX(t.size_bytes) AS s ` + idleThumbs + ` GROUP BY t.sha256) b), 0) ` + idleThumbs),
		// A transfer's selection ($1 datastore, $2 idle before, ms).
		transferBlobs: r(`SELECT sha256, MAX(size_bytes) FROM (
			SELECT m.sha256, m.size_bytes FROM media m WHERE ` + transferMedia + ` AND m.sha256 > $3
			UNION ALL SELECT t.sha256, t.size_bytes FROM thumbnails t WHERE ` + transferThumbs + ` AND t.sha256 > $3
			UNION ALL SELECT p.sha256, p.size_bytes FROM export_parts p WHERE ` + transferParts + ` AND p.sha256 > $3
			) b GROUP BY sha256 ORDER BY sha256 LIMIT $4`),
		moveMedia:  r(`UPDATE media AS m SET datastore_id = $4 WHERE ` + transferMedia + ` AND m.sha256 = $3`),
		moveThumbs: r(`UPDATE thumbnails AS t SET datastore_id = $4 WHERE ` + transferThumbs + ` AND t.sha256 = $3`),
		moveParts:  r(`UPDATE export_parts AS p SET datastore_id = $4 WHERE ` + transferParts + ` AND p.sha256 = $3`),
		estimateAll: r(`SELECT COUNT(*), COALESCE(SUM(s), 0) FROM (SELECT sha256, MAX(s) AS s FROM (
			SELECT sha256, size_bytes AS s ` + idleMedia + `
			UNION ALL SELECT t.sha256, t.size_bytes ` + idleThumbs + `) u GROUP BY sha256) b`),
	}
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// rebind writes q's $n placeholders in the dialect's style.
func rebind(q, param string) string {
	if param == "$" {
		return q
	}
	return placeholder.ReplaceAllString(q, param+"$1")
}

// filterSQL builds the WHERE clause of f over media m and quarantined_hashes q,
// with its arguments.
func (a *adminQueries) filterSQL(f storage.MediaFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("%s%d", a.param, len(args))
	}
	in := func(col string, values []string, not bool) {
		if len(values) == 0 {
			return
		}
		ps := make([]string, len(values))
		for i, v := range values {
			ps[i] = arg(v)
		}
		op := " IN ("
		if not {
			op = " NOT IN ("
		}
		conds = append(conds, col+op+strings.Join(ps, ", ")+")")
	}
	in("m.origin", f.Origins, false)
	in("m.origin", f.NotOrigins, true)
	if f.UserID != "" {
		conds = append(conds, "m.user_id = "+arg(f.UserID))
	}
	if f.SHA256 != "" {
		conds = append(conds, "m.sha256 = "+arg(f.SHA256))
	}
	if !f.CreatedBefore.IsZero() {
		conds = append(conds, "m.created_ts < "+arg(f.CreatedBefore.UnixMilli()))
	}
	if !f.IdleSince.IsZero() {
		conds = append(conds, idle+" < "+arg(f.IdleSince.UnixMilli()))
	}
	if f.LargerThan > 0 {
		conds = append(conds, "m.size_bytes > "+arg(f.LargerThan))
	}
	if f.Quarantined {
		conds = append(conds, "EXISTS (SELECT 1 "+quarantineOf+")")
	}
	if f.NotQuarantined {
		conds = append(conds, "NOT EXISTS (SELECT 1 "+quarantineOf+")")
	}
	if f.NotProtected {
		conds = append(conds, "NOT m.protected")
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// mediaOrder maps the orders to their columns.
var mediaOrder = map[storage.MediaOrder]string{
	"":                    "m.created_ts",
	storage.ByCreated:     "m.created_ts",
	storage.ByMediaID:     "m.media_id",
	storage.ByUploadName:  "m.upload_name",
	storage.ByLastAccess:  "m.last_access_ts",
	storage.BySize:        "m.size_bytes",
	storage.ByContentType: "m.content_type",
	storage.ByQuarantined: "COALESCE((SELECT MIN(q.quarantined_by) " + quarantineOf + "), '')",
	storage.ByProtected:   "m.protected",
}

// page is the LIMIT and OFFSET clause of a listing.
func page(offset, limit int) string {
	if limit <= 0 && offset <= 0 {
		return ""
	}
	if limit <= 0 {
		limit = 1 << 62 // SQLite wants a LIMIT before an OFFSET
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, max(offset, 0))
}

// FindMedia implements storage.CatalogStore.
func (s *Store) FindMedia(ctx context.Context, f storage.MediaFilter) (_ []storage.Media, _ int64, err error) {
	defer s.classify(&err)
	col, ok := mediaOrder[f.Order]
	if !ok {
		return nil, 0, fmt.Errorf("order by %q: not a media order", f.Order)
	}
	where, args := s.a.filterSQL(f)
	var total int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*)"+mediaFrom+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count media: %w", err)
	}
	dir := " ASC"
	if f.Desc {
		dir = " DESC"
	}
	q := "SELECT " + mediaColumns + mediaFrom + where + " ORDER BY " + col + dir + ", m.media_id ASC, m.origin ASC" + page(f.Offset, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find media: %w", err)
	}
	defer rows.Close()
	var out []storage.Media
	for rows.Next() {
		m, err := scanMedia(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan media: %w", err)
		}
		out = append(out, *m)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find media: %w", err)
	}
	return out, total, nil
}

var statsOrder = map[storage.StatsOrder]string{
	"":                   "user_id",
	storage.ByUserID:     "user_id",
	storage.ByMediaCount: "media_count",
	storage.ByMediaBytes: "media_length",
}

// likeEscape makes s match itself only in a LIKE pattern with ESCAPE '\'.
var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// MediaTotals implements storage.TotalsStore.
func (s *Store) MediaTotals(ctx context.Context, f storage.MediaFilter) (count, bytes int64, err error) {
	defer s.classify(&err)
	where, args := s.a.filterSQL(f)
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(m.size_bytes), 0)"+mediaFrom+where, args...).Scan(&count, &bytes); err != nil {
		return 0, 0, fmt.Errorf("media totals: %w", err)
	}
	return count, bytes, nil
}

// UserStats implements storage.CatalogStore.
func (s *Store) UserStats(ctx context.Context, f storage.StatsFilter) (_ []storage.UserStats, _ int64, err error) {
	defer s.classify(&err)
	col, ok := statsOrder[f.Order]
	if !ok {
		return nil, 0, fmt.Errorf("order by %q: not a statistics order", f.Order)
	}
	args := []any{f.Origin}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("%s%d", s.a.param, len(args))
	}
	where := " WHERE origin = " + s.a.param + "1 AND user_id <> ''"
	if !f.From.IsZero() {
		where += " AND created_ts >= " + arg(f.From.UnixMilli())
	}
	if !f.Until.IsZero() {
		where += " AND created_ts <= " + arg(f.Until.UnixMilli())
	}
	if f.Search != "" {
		// The localpart is what lies between '@' and the first ':'.
		where += " AND user_id LIKE " + arg("@%"+likeEscape.Replace(f.Search)+"%:%") + ` ESCAPE '\'`
	}
	grouped := "SELECT user_id, COUNT(*) AS media_count, SUM(size_bytes) AS media_length FROM media" + where + " GROUP BY user_id"
	var total int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+grouped+") g", args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	dir := " ASC"
	if f.Desc {
		dir = " DESC"
	}
	rows, err := s.db.QueryContext(ctx, grouped+" ORDER BY "+col+dir+", user_id ASC"+page(f.Offset, f.Limit), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("user statistics: %w", err)
	}
	defer rows.Close()
	var out []storage.UserStats
	for rows.Next() {
		var u storage.UserStats
		if err := rows.Scan(&u.UserID, &u.Count, &u.Bytes); err != nil {
			return nil, 0, fmt.Errorf("scan user statistics: %w", err)
		}
		out = append(out, u)
	}
	return out, total, rows.Err()
}

// ServerUsage implements storage.CatalogStore.
func (s *Store) ServerUsage(ctx context.Context, origin string) (_ storage.ServerUsage, err error) {
	defer s.classify(&err)
	var u storage.ServerUsage
	if err := s.db.QueryRowContext(ctx, s.a.serverMedia, origin).Scan(&u.MediaBytes, &u.MediaCount); err != nil {
		return u, fmt.Errorf("usage of %s: %w", origin, err)
	}
	if err := s.db.QueryRowContext(ctx, s.a.serverThumbs, origin).Scan(&u.ThumbnailBytes, &u.ThumbnailCount); err != nil {
		return u, fmt.Errorf("thumbnail usage of %s: %w", origin, err)
	}
	return u, nil
}

// Estimate implements storage.CatalogStore.
func (s *Store) Estimate(ctx context.Context, datastoreID string, idleSince time.Time) (_ storage.Estimate, err error) {
	defer s.classify(&err)
	var e storage.Estimate
	ts := idleSince.UnixMilli()
	if err := s.db.QueryRowContext(ctx, s.a.estimateMedia, datastoreID, ts).Scan(&e.Media, &e.MediaBlobs, &e.MediaBytes); err != nil {
		return e, fmt.Errorf("estimate media of %s: %w", datastoreID, err)
	}
	if err := s.db.QueryRowContext(ctx, s.a.estimateThumbs, datastoreID, ts).Scan(&e.Thumbnails, &e.ThumbnailBlobs, &e.ThumbnailBytes); err != nil {
		return e, fmt.Errorf("estimate thumbnails of %s: %w", datastoreID, err)
	}
	if err := s.db.QueryRowContext(ctx, s.a.estimateAll, datastoreID, ts).Scan(&e.Blobs, &e.Bytes); err != nil {
		return e, fmt.Errorf("estimate %s: %w", datastoreID, err)
	}
	return e, nil
}

// Quarantine implements storage.ModerationStore.
func (s *Store) Quarantine(ctx context.Context, sums []string, scope, by string) (n int64, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "quarantine", func(tx *sql.Tx) error {
		now := time.Now().UnixMilli()
		for _, sum := range dedupe(sums) {
			var covered int64
			if err := tx.QueryRowContext(ctx, s.a.newlyCovered, sum, scope).Scan(&covered); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, s.a.quarantine, sum, scope, by, now)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err == nil && k > 0 {
				n += covered
			}
		}
		return nil
	})
	return n, err
}

// Unquarantine implements storage.ModerationStore.
func (s *Store) Unquarantine(ctx context.Context, sums []string, scope string, everywhere bool) (n int64, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "unquarantine", func(tx *sql.Tx) error {
		for _, sum := range dedupe(sums) {
			// Counted as media left uncovered: before and after.
			var before, after int64
			if err := tx.QueryRowContext(ctx, s.a.newlyCovered, sum, "").Scan(&before); err != nil {
				return err
			}
			var err error
			if everywhere {
				_, err = tx.ExecContext(ctx, s.a.unquarantineAll, sum)
			} else {
				_, err = tx.ExecContext(ctx, s.a.unquarantine, sum, scope)
			}
			if err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, s.a.newlyCovered, sum, "").Scan(&after); err != nil {
				return err
			}
			n += after - before
		}
		return nil
	})
	return n, err
}

// SetProtected implements storage.ModerationStore.
func (s *Store) SetProtected(ctx context.Context, origin, mediaID string, protected bool) (err error) {
	defer s.classify(&err)
	res, err := s.db.ExecContext(ctx, s.a.setProtected, origin, mediaID, protected)
	if err != nil {
		return fmt.Errorf("protect %s/%s: %w", origin, mediaID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("protect %s/%s: %w", origin, mediaID, storage.ErrNotFound)
	}
	return nil
}

// deleteBatch bounds the media one purge transaction removes.
const deleteBatch = 500

// DeleteMedia implements storage.PurgeStore.
func (s *Store) DeleteMedia(ctx context.Context, keys []storage.MediaKey, local []string) (_ []storage.Media, _ []storage.BlobRef, err error) {
	defer s.classify(&err)
	var removed []storage.Media
	blobs := map[storage.BlobRef]bool{}
	isLocal := map[string]bool{}
	for _, o := range local {
		isLocal[o] = true
	}
	for start := 0; start < len(keys); start += deleteBatch {
		batch := keys[start:min(len(keys), start+deleteBatch)]
		var done []storage.Media
		err := s.inTx(ctx, "delete media", func(tx *sql.Tx) error {
			done = done[:0]
			for _, k := range batch {
				m, err := scanMedia(tx.QueryRowContext(ctx, s.a.selectForDelete, k.Origin, k.MediaID))
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, s.a.deleteMedia, k.Origin, k.MediaID); err != nil {
					return err
				}
				if m.UserID != "" {
					if _, err := tx.ExecContext(ctx, s.q.AddUsage, m.UserID, -m.SizeBytes, -1); err != nil {
						return err
					}
				}
				if isLocal[k.Origin] {
					if _, err := tx.ExecContext(ctx, s.a.tombstone, k.Origin, k.MediaID, time.Now().UnixMilli()); err != nil {
						return err
					}
				}
				thumbs, err := s.deleteThumbs(ctx, tx, k, 1<<62)
				if err != nil {
					return err
				}
				for _, b := range thumbs {
					blobs[b] = true
				}
				blobs[storage.BlobRef{DatastoreID: m.DatastoreID, SHA256: m.SHA256}] = true
				done = append(done, *m)
			}
			return nil
		})
		if err != nil {
			return removed, refs(blobs), err
		}
		removed = append(removed, done...)
	}
	return removed, refs(blobs), nil
}

// deleteThumbs removes the thumbnail rows of k created before beforeMS, in
// tx, and returns their blobs.
func (s *Store) deleteThumbs(ctx context.Context, tx *sql.Tx, k storage.MediaKey, beforeMS int64) ([]storage.BlobRef, error) {
	out, err := scanRefs(tx.QueryContext(ctx, s.a.thumbBlobsOf, k.Origin, k.MediaID, beforeMS))
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, s.a.deleteThumbsOf, k.Origin, k.MediaID, beforeMS)
	return out, err
}

// DeleteThumbnails implements storage.PurgeStore.
func (s *Store) DeleteThumbnails(ctx context.Context, key *storage.MediaKey, before time.Time) (out []storage.BlobRef, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "delete thumbnails", func(tx *sql.Tx) error {
		if key != nil {
			out, err = s.deleteThumbs(ctx, tx, *key, before.UnixMilli())
			return err
		}
		if out, err = scanRefs(tx.QueryContext(ctx, s.a.thumbBlobsBefore, before.UnixMilli())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.a.deleteThumbsBefore, before.UnixMilli())
		return err
	})
	return out, err
}

// DeleteBlob implements storage.PurgeStore.
func (s *Store) DeleteBlob(ctx context.Context, b storage.BlobRef, del func(context.Context) error) (ran bool, err error) {
	defer s.classify(&err)
	err = s.inTx(ctx, "delete blob "+b.SHA256, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, blobLock(b.SHA256)); err != nil {
			return err
		}
		referenced, err := rowExists(ctx, tx, s.a.blobReferenced, b.DatastoreID, b.SHA256)
		if err != nil || referenced {
			return err
		}
		ran = true
		return del(ctx)
	})
	return ran && err == nil, err
}

// CreateTask implements storage.TaskStore.
func (s *Store) CreateTask(ctx context.Context, t *storage.Task) (err error) {
	defer s.classify(&err)
	if err := s.db.QueryRowContext(ctx, s.a.insertTask, t.Name, t.Params, t.Start.UnixMilli()).Scan(&t.ID); err != nil {
		return fmt.Errorf("insert task %s: %w", t.Name, err)
	}
	return nil
}

// FinishTask implements storage.TaskStore.
func (s *Store) FinishTask(ctx context.Context, id int64, end time.Time, errMsg string) (err error) {
	defer s.classify(&err)
	if _, err := s.db.ExecContext(ctx, s.a.finishTask, id, end.UnixMilli(), errMsg); err != nil {
		return fmt.Errorf("finish task %d: %w", id, err)
	}
	return nil
}

// SetTaskProgress implements storage.TaskStore.
func (s *Store) SetTaskProgress(ctx context.Context, id int64, progress string) (err error) {
	defer s.classify(&err)
	if _, err := s.db.ExecContext(ctx, s.a.taskProgress, id, progress); err != nil {
		return fmt.Errorf("record progress of task %d: %w", id, err)
	}
	return nil
}

// Tasks implements storage.TaskStore.
func (s *Store) Tasks(ctx context.Context, unfinished bool) (_ []storage.Task, err error) {
	defer s.classify(&err)
	q := s.a.selectTasks
	if unfinished {
		q += " WHERE end_ts <= 0"
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY task_id")
	if err != nil {
		return nil, fmt.Errorf("select tasks: %w", err)
	}
	defer rows.Close()
	var out []storage.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// Task implements storage.TaskStore.
func (s *Store) Task(ctx context.Context, id int64) (_ *storage.Task, err error) {
	defer s.classify(&err)
	t, err := scanTask(s.db.QueryRowContext(ctx, s.a.selectTask, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("task %d: %w", id, storage.ErrNotFound)
	}
	return t, err
}

func scanTask(row interface{ Scan(...any) error }) (*storage.Task, error) {
	var t storage.Task
	var start, end int64
	if err := row.Scan(&t.ID, &t.Name, &t.Params, &start, &end, &t.Error, &t.Progress); err != nil {
		return nil, err
	}
	t.Start = time.UnixMilli(start)
	if end > 0 {
		t.End = time.UnixMilli(end)
	}
	return &t, nil
}

// AcquireLease implements storage.LeaseStore.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (_ bool, err error) {
	defer s.classify(&err)
	res, err := s.db.ExecContext(ctx, s.a.acquireLease, name, holder, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) (err error) {
	defer s.classify(&err)
	if _, err := s.db.ExecContext(ctx, s.a.releaseLease, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// LeaseHolderOf implements storage.LeaseStore.
func (s *Store) LeaseHolderOf(ctx context.Context, name string, now time.Time) (holder string, err error) {
	defer s.classify(&err)
	err = s.db.QueryRowContext(ctx, s.a.leaseHolder, name, now.UnixMilli()).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up lease %s: %w", name, err)
	}
	return holder, nil
}

// RecordAccess implements storage.AccessStore.
func (s *Store) RecordAccess(ctx context.Context, at map[storage.MediaKey]time.Time) (err error) {
	defer s.classify(&err)
	return s.inTx(ctx, "record access", func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.a.recordAccess)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for k, t := range at {
			if _, err := stmt.ExecContext(ctx, k.Origin, k.MediaID, t.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

func scanRefs(rows *sql.Rows, err error) ([]storage.BlobRef, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.BlobRef
	for rows.Next() {
		var b storage.BlobRef
		if err := rows.Scan(&b.DatastoreID, &b.SHA256); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func refs(set map[storage.BlobRef]bool) []storage.BlobRef {
	out := make([]storage.BlobRef, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	return out
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
