package importer_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// target is mediarepo's side of an import: a real SQLite store and disk.
type target struct {
	meta  *sqlite.Store
	blobs *disk.Store
	ds    *storage.Datastores
}

func newTarget(t *testing.T) *target {
	meta, blobs := storagetest.OpenSQLite(t), storagetest.OpenDisk(t)
	ds, err := storage.NewDatastores(map[string]storage.BlobStore{"d": blobs}, storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	return &target{meta: meta, blobs: blobs, ds: ds}
}

func (tg *target) run(t *testing.T, src importer.Source, o importer.Options) *importer.Report {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	o.Stores = importer.Stores{Media: tg.meta, Thumbnails: tg.meta, Moderation: tg.meta, Access: tg.meta, Blobs: tg.ds}
	o.Local, o.Log = []string{"example.org"}, logrus.NewEntry(log)
	if o.Workers == 0 {
		o.Workers = 3
	}
	rep, err := importer.Run(context.Background(), src, o)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return rep
}

// bytesOf reads a stored media's bytes.
func (tg *target) bytesOf(t *testing.T, m *storage.Media) []byte {
	t.Helper()
	r, err := tg.blobs.Open(context.Background(), m.SHA256)
	if err != nil {
		t.Fatalf("blob of %s: %v", m.MediaID, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

func (tg *target) count(t *testing.T) int64 {
	_, n, err := tg.meta.FindMedia(context.Background(), storage.MediaFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// want is what one media must be after the import.
type want struct {
	origin, id, name, contentType, user string
	content                             string
	created, accessed                   int64
	quarantinedBy                       string
	protected, authenticated            bool
	thumbs                              map[string]string // "WxH method" -> bytes
}

func (tg *target) check(t *testing.T, w want) {
	t.Helper()
	ctx := context.Background()
	m, err := tg.meta.Media(ctx, w.origin, w.id)
	if err != nil {
		t.Errorf("%s/%s not imported: %v", w.origin, w.id, err)
		return
	}
	sum := sha256.Sum256([]byte(w.content))
	got := fmt.Sprintf("%s|%s|%s|%d|%s|%d|%s|%v|%v", m.UploadName, m.ContentType, m.UserID, m.SizeBytes, m.SHA256,
		m.CreatedAt.UnixMilli(), m.QuarantinedBy, m.Protected, m.Authenticated)
	exp := fmt.Sprintf("%s|%s|%s|%d|%s|%d|%s|%v|%v", w.name, w.contentType, w.user, len(w.content), hex.EncodeToString(sum[:]),
		w.created, w.quarantinedBy, w.protected, w.authenticated)
	if got != exp {
		t.Errorf("%s/%s imported as\n  %s\nwant\n  %s", w.origin, w.id, got, exp)
	}
	if w.accessed != 0 && m.LastAccess.UnixMilli() != w.accessed {
		t.Errorf("%s/%s last access %d, want %d", w.origin, w.id, m.LastAccess.UnixMilli(), w.accessed)
	}
	if b := tg.bytesOf(t, m); string(b) != w.content {
		t.Errorf("%s/%s bytes %q, want %q", w.origin, w.id, b, w.content)
	}
	thumbs, _ := tg.meta.Thumbnails(ctx, w.origin, w.id)
	gotThumbs := map[string]string{}
	for _, th := range thumbs {
		r, err := tg.blobs.Open(ctx, th.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		gotThumbs[fmt.Sprintf("%dx%d %s %s", th.Width, th.Height, th.Method, th.ContentType)] = string(b)
	}
	if fmt.Sprint(gotThumbs) != fmt.Sprint(orEmpty(w.thumbs)) {
		t.Errorf("%s/%s thumbnails %v, want %v", w.origin, w.id, gotThumbs, w.thumbs)
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sourceDB is a database of the source's own, made by the test: a fresh
// PostgreSQL schema or an SQLite file.
func sourceDB(t *testing.T, backend string) (db *sql.DB, dsn string) {
	if backend == "postgres" {
		dsn = storagetest.PostgresDSN(t)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, dsn
	}
	path := filepath.Join(t.TempDir(), "source.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, "sqlite:" + path
}

func exec(t *testing.T, db *sql.DB, backend, q string, args ...any) {
	t.Helper()
	if backend == "postgres" {
		for i := len(args); i >= 1; i-- {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", len(args)-i+1), 1)
		}
	}
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

const synapseSchema = `
CREATE TABLE local_media_repository (media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT,
	upload_name TEXT, user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT,
	safe_from_quarantine BOOLEAN NOT NULL DEFAULT false, authenticated BOOLEAN, sha256 TEXT);
CREATE TABLE local_media_repository_thumbnails (media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER,
	thumbnail_type TEXT, thumbnail_method TEXT, thumbnail_length INTEGER);
CREATE TABLE remote_media_cache (media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT,
	media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT, authenticated BOOLEAN, sha256 TEXT);
CREATE TABLE remote_media_cache_thumbnails (media_origin TEXT, media_id TEXT, thumbnail_width INTEGER,
	thumbnail_height INTEGER, thumbnail_method TEXT, thumbnail_type TEXT, thumbnail_length INTEGER, filesystem_id TEXT);
`

// synapseFixture fills a Synapse database and media store and returns what
// the import must make of it.
func synapseFixture(t *testing.T, backend string) (dsn, store string, wants []want) {
	db, dsn := sourceDB(t, backend)
	for _, stmt := range strings.Split(strings.TrimSpace(synapseSchema), ";") {
		if strings.TrimSpace(stmt) != "" {
			exec(t, db, backend, stmt)
		}
	}
	store = t.TempDir()
	local := func(id, content string) string {
		p := filepath.Join(store, "local_content", id[0:2], id[2:4], id[4:])
		writeFile(t, p, content)
		return p
	}
	thumbDir := func(id string) string { return filepath.Join(store, "local_thumbnails", id[0:2], id[2:4], id[4:]) }
	add := func(id, typ, content string, created int64, name, user, quarantinedBy, urlCache string, accessed int64, protected bool, authenticated bool) {
		var q, uc, n any = nil, nil, nil
		if quarantinedBy != "" {
			q = quarantinedBy
		}
		if urlCache != "" {
			uc = urlCache
		}
		if name != "" {
			n = name
		}
		exec(t, db, backend, `INSERT INTO local_media_repository VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, typ, len(content), created, n, user, q, uc, accessed, protected, authenticated, hexSum(content))
	}
	// A photo with both naming schemes of thumbnails.
	local("photoAAAAAAAAAAAAAAAAAAAA", "photo bytes")
	add("photoAAAAAAAAAAAAAAAAAAAA", "image/jpeg", "photo bytes", 1_600_000_000_000, "cat.jpg", "@alice:example.org", "", "", 1_700_000_000_000, false, false)
	exec(t, db, backend, `INSERT INTO local_media_repository_thumbnails VALUES (?, ?, ?, ?, ?, ?)`, "photoAAAAAAAAAAAAAAAAAAAA", 32, 32, "image/jpeg", "crop", 5)
	exec(t, db, backend, `INSERT INTO local_media_repository_thumbnails VALUES (?, ?, ?, ?, ?, ?)`, "photoAAAAAAAAAAAAAAAAAAAA", 320, 240, "image/png", "scale", 5)
	writeFile(t, filepath.Join(thumbDir("photoAAAAAAAAAAAAAAAAAAAA"), "32-32-image-jpeg-crop"), "thumb")
	writeFile(t, filepath.Join(thumbDir("photoAAAAAAAAAAAAAAAAAAAA"), "320-240-image-png"), "older")
	// Quarantined, protected, authenticated media; a URL preview image; a
	// missing file; bytes that do not match their hash.
	local("badBBBBBBBBBBBBBBBBBBBBB", "bad bytes")
	add("badBBBBBBBBBBBBBBBBBBBBB", "image/png", "bad bytes", 1_600_000_001_000, "", "@bob:example.org", "@mod:example.org", "", 0, false, true)
	local("keepCCCCCCCCCCCCCCCCCCCC", "keep bytes")
	add("keepCCCCCCCCCCCCCCCCCCCC", "text/plain", "keep bytes", 1_600_000_002_000, "notes.txt", "@alice:example.org", "", "", 0, true, false)
	local("urlDDDDDDDDDDDDDDDDDDDDD", "preview image")
	add("urlDDDDDDDDDDDDDDDDDDDDD", "image/png", "preview image", 1_600_000_003_000, "", "", "", "https://example.com/", 0, false, false)
	add("goneEEEEEEEEEEEEEEEEEEEE", "image/png", "never written", 1_600_000_004_000, "", "@alice:example.org", "", "", 0, false, false)
	local("liarFFFFFFFFFFFFFFFFFFFF", "changed on disk")
	exec(t, db, backend, `INSERT INTO local_media_repository VALUES (?, ?, ?, ?, NULL, ?, NULL, NULL, NULL, ?, ?, ?)`,
		"liarFFFFFFFFFFFFFFFFFFFF", "text/plain", 15, 1_600_000_005_000, "@alice:example.org", false, false, hexSum("the original"))
	// Cached remote media, with a thumbnail.
	writeFile(t, filepath.Join(store, "remote_content", "remote.org", "fs", "id", "0000000000000001"), "remote bytes")
	exec(t, db, backend, `INSERT INTO remote_media_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
		"remote.org", "farAway", "image/gif", 1_600_000_006_000, "far.gif", 12, "fsid0000000000000001", 1_650_000_000_000, false, hexSum("remote bytes"))
	exec(t, db, backend, `INSERT INTO remote_media_cache_thumbnails VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		"remote.org", "farAway", 96, 96, "crop", "image/jpeg", 4, "fsid0000000000000001")
	writeFile(t, filepath.Join(store, "remote_thumbnail", "remote.org", "fs", "id", "0000000000000001", "96-96-image-jpeg-crop"), "far!")
	wants = []want{
		{origin: "example.org", id: "photoAAAAAAAAAAAAAAAAAAAA", name: "cat.jpg", contentType: "image/jpeg", user: "@alice:example.org",
			content: "photo bytes", created: 1_600_000_000_000, accessed: 1_700_000_000_000,
			thumbs: map[string]string{"32x32 crop image/jpeg": "thumb", "320x240 scale image/png": "older"}},
		{origin: "example.org", id: "badBBBBBBBBBBBBBBBBBBBBB", contentType: "image/png", user: "@bob:example.org", content: "bad bytes",
			created: 1_600_000_001_000, quarantinedBy: "@mod:example.org", authenticated: true},
		{origin: "example.org", id: "keepCCCCCCCCCCCCCCCCCCCC", name: "notes.txt", contentType: "text/plain", user: "@alice:example.org",
			content: "keep bytes", created: 1_600_000_002_000, protected: true},
		{origin: "remote.org", id: "farAway", name: "far.gif", contentType: "image/gif", content: "remote bytes",
			created: 1_600_000_006_000, accessed: 1_650_000_000_000, thumbs: map[string]string{"96x96 crop image/jpeg": "far!"}},
	}
	return dsn, store, wants
}

func TestSynapseImport(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn, store, wants := synapseFixture(t, backend)
			src, err := importer.OpenSynapse(context.Background(), dsn, store, "example.org")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if items, bytes, err := src.Count(context.Background()); err != nil || items != 7 || bytes != 11+9+10+13+13+15+12 {
				t.Errorf("Count = %d, %d, %v", items, bytes, err)
			}
			tg := newTarget(t)
			dry := tg.run(t, src, importer.Options{DryRun: true})
			if dry.Imported != 5 || dry.Skipped != 1 || len(dry.Problems) != 1 || tg.count(t) != 0 {
				t.Errorf("dry run = %+v, %d rows written; want 5 to import, 1 skipped, the missing file named, nothing written", dry, tg.count(t))
			}
			rep := tg.run(t, src, importer.Options{})
			if rep.Imported != 4 || rep.Skipped != 1 || rep.Thumbnails != 3 || len(rep.Problems) != 2 {
				t.Errorf("report = %+v", rep)
			}
			for _, p := range []string{"mxc://example.org/goneEEEEEEEEEEEEEEEEEEEE: ", "mxc://example.org/liarFFFFFFFFFFFFFFFFFFFF: the file's SHA-256"} {
				if !slices.ContainsFunc(rep.Problems, func(s string) bool { return strings.HasPrefix(s, p) }) {
					t.Errorf("no problem %q in %q", p, rep.Problems)
				}
			}
			for _, w := range wants {
				tg.check(t, w)
			}
			if _, err := tg.meta.Media(context.Background(), "example.org", "urlDDDDDDDDDDDDDDDDDDDDD"); err == nil {
				t.Error("a URL preview's cached image was imported as media")
			}
			// Quarantine carried over is quarantine here: the bytes are refused.
			again := &storage.Media{Origin: "example.org", MediaID: "new", ContentType: "image/png", SHA256: hexSum("bad bytes"), SizeBytes: 9, DatastoreID: "d", CreatedAt: time.Now()}
			if err := tg.meta.CreateMedia(context.Background(), again, storage.Quota{}, nil); err == nil {
				t.Error("quarantined bytes could be uploaded again after the import")
			}
			second := tg.run(t, src, importer.Options{})
			if second.Imported != 0 || second.Present != 4 || second.Thumbnails != 0 || tg.count(t) != 4 {
				t.Errorf("second run = %+v with %d rows; want nothing new", second, tg.count(t))
			}
		})
	}
}

// An import cut off half-way (as by kill -9: each media is written whole or
// not at all) is finished by the next run, each media once.
func TestInterruptedImportResumes(t *testing.T) {
	db, dsn := sourceDB(t, "sqlite")
	exec(t, db, "sqlite", dendriteSchema)
	base := t.TempDir()
	const n = 40
	for i := range n {
		content := fmt.Sprintf("media number %d", i)
		addDendrite(t, db, "sqlite", base, fmt.Sprintf("media%02d", i), "example.org", content, int64(1_600_000_000_000+i), nil)
	}
	src, err := importer.OpenDendrite(context.Background(), dsn, base)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tg := newTarget(t)
	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Int64
	log := logrus.New()
	log.SetOutput(io.Discard)
	_, err = importer.Run(ctx, src, importer.Options{
		Stores: importer.Stores{Media: tg.meta, Thumbnails: tg.meta, Moderation: tg.meta, Access: tg.meta, Blobs: tg.ds},
		Local:  []string{"example.org"}, Workers: 2, Log: logrus.NewEntry(log),
		Progress: func(int64, int64) {
			if done.Add(1) == 15 {
				cancel()
			}
		},
	})
	if err == nil {
		t.Fatal("the cut-off run reported no error")
	}
	partial := tg.count(t)
	if partial == 0 || partial == n {
		t.Fatalf("%d of %d imported by the cut-off run; want some", partial, n)
	}
	rep := tg.run(t, src, importer.Options{})
	if rep.Imported+rep.Present != n || tg.count(t) != n || rep.Present != partial {
		t.Errorf("resumed run = %+v with %d rows; want the other %d imported once", rep, tg.count(t), n-int(partial))
	}
	for i := range n {
		m, err := tg.meta.Media(context.Background(), "example.org", fmt.Sprintf("media%02d", i))
		if err != nil || string(tg.bytesOf(t, m)) != fmt.Sprintf("media number %d", i) {
			t.Errorf("media%02d: %v", i, err)
		}
	}
}

const dendriteSchema = `CREATE TABLE mediaapi_media_repository (media_id TEXT NOT NULL, media_origin TEXT NOT NULL,
	content_type TEXT NOT NULL, file_size_bytes BIGINT NOT NULL, creation_ts BIGINT NOT NULL, upload_name TEXT NOT NULL,
	base64hash TEXT NOT NULL, user_id TEXT NOT NULL);
CREATE TABLE mediaapi_thumbnail (media_id TEXT NOT NULL, media_origin TEXT NOT NULL, content_type TEXT NOT NULL,
	file_size_bytes BIGINT NOT NULL, creation_ts BIGINT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
	resize_method TEXT NOT NULL)`

// addDendrite stores content as Dendrite does: a row (the upload name
// path-escaped) and a file under the URL-safe base64 of its hash, with
// thumbnails beside it.
func addDendrite(t *testing.T, db *sql.DB, backend, base, id, origin, content string, created int64, thumbs map[string]string) {
	sum := sha256.Sum256([]byte(content))
	h := base64.RawURLEncoding.EncodeToString(sum[:])
	dir := filepath.Join(base, h[0:1], h[1:2], h[2:])
	writeFile(t, filepath.Join(dir, "file"), content)
	exec(t, db, backend, `INSERT INTO mediaapi_media_repository VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, origin, "text/plain", len(content), created, url.PathEscape("file "+id), h, "@alice:"+origin)
	for key, data := range thumbs {
		var w, hgt int
		var method string
		fmt.Sscanf(key, "%dx%d %s", &w, &hgt, &method)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("thumbnail-%dx%d-%s", w, hgt, method)), data)
		exec(t, db, backend, `INSERT INTO mediaapi_thumbnail VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, origin, "image/jpeg", len(data), created, w, hgt, method)
	}
}

func TestDendriteImport(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db, dsn := sourceDB(t, backend)
			for _, stmt := range strings.Split(dendriteSchema, ";") {
				exec(t, db, backend, stmt)
			}
			base := t.TempDir()
			addDendrite(t, db, backend, base, "localOne", "example.org", "dendrite local", 1_600_000_000_000,
				map[string]string{"96x96 crop": "thumb96", "640x480 scale": "thumb640"})
			addDendrite(t, db, backend, base, "cached", "remote.org", "dendrite remote", 1_600_000_001_000, nil)
			src, err := importer.OpenDendrite(context.Background(), dsn, base)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			tg := newTarget(t)
			if rep := tg.run(t, src, importer.Options{}); rep.Imported != 2 || rep.Thumbnails != 2 || len(rep.Problems) != 0 {
				t.Errorf("report = %+v", rep)
			}
			tg.check(t, want{origin: "example.org", id: "localOne", name: "file localOne", contentType: "text/plain", user: "@alice:example.org",
				content: "dendrite local", created: 1_600_000_000_000,
				thumbs: map[string]string{"96x96 crop image/jpeg": "thumb96", "640x480 scale image/jpeg": "thumb640"}})
			tg.check(t, want{origin: "remote.org", id: "cached", name: "file cached", contentType: "text/plain", user: "@alice:remote.org",
				content: "dendrite remote", created: 1_600_000_001_000})
		})
	}
}

const mmrSchema = `
CREATE TABLE media (origin TEXT NOT NULL, media_id TEXT NOT NULL, upload_name TEXT NOT NULL, content_type TEXT NOT NULL,
	user_id TEXT NOT NULL, sha256_hash TEXT NOT NULL, size_bytes BIGINT NOT NULL, location TEXT NOT NULL,
	creation_ts BIGINT NOT NULL, quarantined BOOL NOT NULL DEFAULT FALSE, datastore_id TEXT NOT NULL DEFAULT '',
	compressed BOOL NOT NULL DEFAULT FALSE);
CREATE TABLE thumbnails (origin TEXT NOT NULL, media_id TEXT NOT NULL, width INT NOT NULL, height INT NOT NULL,
	method TEXT NOT NULL, content_type TEXT NOT NULL, size_bytes BIGINT NOT NULL, location TEXT NOT NULL,
	creation_ts BIGINT NOT NULL, animated BOOL NOT NULL DEFAULT FALSE, sha256_hash TEXT NULL,
	datastore_id TEXT NOT NULL DEFAULT '', compressed BOOL NOT NULL DEFAULT FALSE);
CREATE TABLE datastores (datastore_id TEXT NOT NULL, ds_type TEXT NOT NULL, uri TEXT NOT NULL);
CREATE TABLE media_attributes (origin TEXT NOT NULL, media_id TEXT NOT NULL, purpose TEXT NOT NULL);
CREATE TABLE last_access (sha256_hash TEXT NOT NULL, last_access_ts BIGINT NOT NULL)
`

func TestMMRImport(t *testing.T) {
	db, dsn := sourceDB(t, "postgres")
	for _, stmt := range strings.Split(strings.TrimSpace(mmrSchema), ";") {
		exec(t, db, "postgres", stmt)
	}
	dir, moved := t.TempDir(), t.TempDir()
	exec(t, db, "postgres", `INSERT INTO datastores VALUES ('disk', 'file', ?), ('bucket', 's3', 's3://s3.example/bucket'), ('old', 'file', '/nonexistent')`, dir)
	put := func(ds, root, origin, id, content, location string, created int64, quarantined bool) {
		writeFile(t, filepath.Join(root, location), content)
		exec(t, db, "postgres", `INSERT INTO media VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false)`,
			origin, id, "name "+id, "application/octet-stream", "@alice:"+origin, hexSum(content), len(content), location, created, quarantined, ds)
	}
	put("disk", dir, "example.org", "plain", "mmr plain", "ab/cd/plainfile", 1_600_000_000_000, false)
	put("disk", dir, "example.org", "pinnedOne", "mmr pinned", "ef/gh/pinnedfile", 1_600_000_001_000, false)
	put("disk", dir, "remote.org", "blocked", "mmr quarantined", "ij/kl/blockedfile", 1_600_000_002_000, true)
	put("old", moved, "example.org", "movedOne", "mmr moved", "mn/op/movedfile", 1_600_000_003_000, false)
	exec(t, db, "postgres", `INSERT INTO media VALUES ('example.org', 'inS3', 'n', 't', '', ?, 3, 'x/y', 1, false, 'bucket', false)`, hexSum("abc"))
	exec(t, db, "postgres", `INSERT INTO media_attributes VALUES ('example.org', 'pinnedOne', 'pinned')`)
	exec(t, db, "postgres", `INSERT INTO last_access VALUES (?, 1700000000000)`, hexSum("mmr plain"))
	writeFile(t, filepath.Join(dir, "th/um/b"), "mmr thumb")
	exec(t, db, "postgres", `INSERT INTO thumbnails VALUES ('example.org', 'plain', 96, 96, 'crop', 'image/png', 9, 'th/um/b', 1600000000000, true, ?, 'disk', false)`, hexSum("mmr thumb"))

	src, err := importer.OpenMMR(context.Background(), dsn, map[string]string{"old": moved})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tg := newTarget(t)
	rep := tg.run(t, src, importer.Options{})
	if rep.Imported != 4 || rep.Thumbnails != 1 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "-datastore bucket=DIR") {
		t.Errorf("report = %+v", rep)
	}
	tg.check(t, want{origin: "example.org", id: "plain", name: "name plain", contentType: "application/octet-stream", user: "@alice:example.org",
		content: "mmr plain", created: 1_600_000_000_000, accessed: 1_700_000_000_000, thumbs: map[string]string{"96x96 crop image/png": "mmr thumb"}})
	tg.check(t, want{origin: "example.org", id: "pinnedOne", name: "name pinnedOne", contentType: "application/octet-stream", user: "@alice:example.org",
		content: "mmr pinned", created: 1_600_000_001_000, protected: true})
	tg.check(t, want{origin: "remote.org", id: "blocked", name: "name blocked", contentType: "application/octet-stream", user: "@alice:remote.org",
		content: "mmr quarantined", created: 1_600_000_002_000, quarantinedBy: "matrix-media-repo"})
	tg.check(t, want{origin: "example.org", id: "movedOne", name: "name movedOne", contentType: "application/octet-stream", user: "@alice:example.org",
		content: "mmr moved", created: 1_600_000_003_000})
	thumbs, _ := tg.meta.Thumbnails(context.Background(), "example.org", "plain")
	if len(thumbs) != 1 || !thumbs[0].Animated {
		t.Errorf("thumbnail = %+v, want the animated flag kept", thumbs)
	}
	if again := tg.run(t, src, importer.Options{}); again.Imported != 0 || again.Present != 4 {
		t.Errorf("second run = %+v", again)
	}
}
