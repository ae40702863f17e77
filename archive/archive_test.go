package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// repo is one repository's stores: SQLite and a disk datastore.
type repo struct {
	meta  *sqlite.Store
	blobs storage.BlobStore
	ds    *storage.Datastores
}

func newRepo(t *testing.T) *repo {
	meta, blobs := storagetest.OpenSQLite(t), storagetest.OpenDisk(t)
	ds, err := storage.NewDatastores(map[string]storage.BlobStore{"d": blobs}, storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	return &repo{meta: meta, blobs: blobs, ds: ds}
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func (r *repo) importOptions() importer.Options {
	return importer.Options{
		Stores: importer.Stores{Media: r.meta, Thumbnails: r.meta, Moderation: r.meta, Access: r.meta, Blobs: r.ds},
		Local:  []string{"example.org"}, Workers: 1, Log: quietLog(),
	}
}

// upload stores media as an upload would.
func (r *repo) upload(t *testing.T, origin, id, user, name, contentType, content string, created time.Time) *storage.Media {
	t.Helper()
	ctx := context.Background()
	staged, err := r.ds.Stage(ctx, "d", strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	m := &storage.Media{Origin: origin, MediaID: id, UploadName: name, ContentType: contentType, UserID: user,
		SHA256: staged.SHA256(), SizeBytes: staged.Size(), DatastoreID: "d", CreatedAt: time.UnixMilli(created.UnixMilli())}
	if err := r.meta.CreateMedia(ctx, m, storage.Quota{}, staged.Commit); err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *repo) content(t *testing.T, origin, id string) (*storage.Media, string) {
	t.Helper()
	m, err := r.meta.Media(context.Background(), origin, id)
	if err != nil {
		t.Fatalf("%s/%s: %v", origin, id, err)
	}
	b, err := r.ds.Open(context.Background(), m.DatastoreID, m.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, _ := io.ReadAll(b)
	return m, string(data)
}

// dirSink writes parts as files of dir, as the command line does.
func dirSink(dir string) archive.Sink {
	return func(_ context.Context, _ int, name string, r io.Reader) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		return errorsJoin(err, f.Close())
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// entry is one file of a part as unpacked.
type entry struct {
	name    string
	mode    int64
	modTime time.Time
	body    string
}

// unpack reads a part as any tar tool would.
func unpack(t *testing.T, path string) (gzName string, entries []entry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", path, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not a tar: %v", path, err)
		}
		b, _ := io.ReadAll(tr)
		entries = append(entries, entry{hdr.Name, hdr.Mode, hdr.ModTime, string(b)})
	}
	return gz.Name, entries
}

func exportTo(t *testing.T, r *repo, e archive.Entity, target int64) (dir string) {
	t.Helper()
	dir = t.TempDir()
	w := archive.NewWriter(context.Background(), e.String(), time.UnixMilli(1_700_000_000_000), target, dirSink(dir))
	if err := archive.Write(context.Background(), archive.Source{Catalog: r.meta, Blobs: r.ds}, e, w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func partFiles(t *testing.T, dir string) []string {
	names, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestExportLayout checks the archive a user's export makes, part by part,
// against matrix-media-repo's layout.
func TestExportLayout(t *testing.T) {
	r := newRepo(t)
	created := time.UnixMilli(1_600_000_000_000)
	r.upload(t, "example.org", "first", "@alice:example.org", "cat.png", "image/png", strings.Repeat("p", 600), created)
	r.upload(t, "example.org", "second", "@alice:example.org", "notes", "text/plain; charset=utf-8", strings.Repeat("t", 700), created.Add(time.Second))
	r.upload(t, "example.org", "third", "@alice:example.org", "", "application/x-unknown-thing", "zzz", created.Add(2*time.Second))
	r.upload(t, "example.org", "bobs", "@bob:example.org", "b.png", "image/png", "bob", created)
	quarantined := r.upload(t, "example.org", "bad", "@alice:example.org", "bad.png", "image/png", "quarantined bytes", created)
	if _, err := r.meta.Quarantine(context.Background(), []string{quarantined.SHA256}, "", "@mod:example.org"); err != nil {
		t.Fatal(err)
	}

	dir := exportTo(t, r, archive.Entity{UserID: "@alice:example.org"}, 1000) // the first two media fill part 1
	parts := partFiles(t, dir)
	var names []string
	for _, p := range parts {
		names = append(names, filepath.Base(p))
	}
	if want := []string{"export-manifest.tgz", "export-part-1.tgz", "export-part-2.tgz"}; !slices.Equal(names, want) {
		t.Fatalf("parts = %v, want %v", names, want)
	}
	gzName, p1 := unpack(t, filepath.Join(dir, "export-part-1.tgz"))
	if gzName != "export-part-1.tar" {
		t.Errorf("gzip name of part 1 = %q, want export-part-1.tar", gzName)
	}
	if len(p1) != 2 || p1[0].name != "example.org__first.png" || p1[1].name != "example.org__second.txt" ||
		p1[0].mode != 0o644 || !p1[0].modTime.Equal(created) || p1[0].body != strings.Repeat("p", 600) {
		t.Errorf("part 1 = %+v", p1)
	}
	if _, p2 := unpack(t, filepath.Join(dir, "export-part-2.tgz")); len(p2) != 1 || p2[0].name != "example.org__third" || p2[0].body != "zzz" {
		t.Errorf("part 2 = %+v (an unknown type has no extension)", p2)
	}
	gzName, last := unpack(t, filepath.Join(dir, "export-manifest.tgz"))
	if gzName != "export-manifest.tar" || len(last) != 2 || last[0].name != "manifest.json" || last[1].name != "index.html" {
		t.Fatalf("manifest part %q = %+v", gzName, last)
	}
	var man map[string]any
	if err := json.Unmarshal([]byte(last[0].body), &man); err != nil {
		t.Fatal(err)
	}
	if man["version"] != 2.0 || man["entity_id"] != "@alice:example.org" || man["created_ts"] != 1_700_000_000_000.0 {
		t.Errorf("manifest = %v", man)
	}
	media := man["media"].(map[string]any)
	if len(media) != 3 || media["mxc://example.org/bad"] != nil || media["mxc://example.org/bobs"] != nil {
		t.Errorf("manifest media = %v; want alice's three, the quarantined one left out", media)
	}
	sum := sha256.Sum256([]byte(strings.Repeat("p", 600)))
	want := map[string]any{
		"name": "cat.png", "file_name": "example.org__first.png", "size_bytes": 600.0, "content_type": "image/png", "s3_url": "",
		"sha256": hex.EncodeToString(sum[:]), "origin": "example.org", "media_id": "first", "created_ts": 1_600_000_000_000.0,
		"uploader": "@alice:example.org",
	}
	if got := media["mxc://example.org/first"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("record = %v\nwant     %v", got, want)
	}
	for _, s := range []string{`<a href="example.org__first.png">`, "cat.png", "mxc://example.org/third", "Media of @alice:example.org"} {
		if !strings.Contains(last[1].body, s) {
			t.Errorf("index.html lacks %q", s)
		}
	}
}

// TestExportOfNothing: an empty part 1, then the manifest.
func TestExportOfNothing(t *testing.T) {
	dir := exportTo(t, newRepo(t), archive.Entity{Server: "nobody.example"}, 1<<20)
	parts := partFiles(t, dir)
	if len(parts) != 2 || filepath.Base(parts[1]) != "export-part-1.tgz" {
		t.Fatalf("parts = %v", parts)
	}
	if _, entries := unpack(t, parts[1]); len(entries) != 0 {
		t.Errorf("part 1 = %+v, want empty", entries)
	}
	_, last := unpack(t, parts[0])
	if !strings.Contains(last[0].body, `"entity_id": "nobody.example"`) || !strings.Contains(last[0].body, `"media": {}`) {
		t.Errorf("manifest = %s", last[0].body)
	}
}

// TestRoundTrip: a server's export imports into another repository with
// every field and byte, whatever order its parts come in; again, it
// changes nothing.
func TestRoundTrip(t *testing.T) {
	src := newRepo(t)
	created := time.UnixMilli(1_650_000_000_000)
	var want []*storage.Media
	for i := range 7 {
		content := strings.Repeat(string(rune('a'+i)), 300+i)
		want = append(want, src.upload(t, "example.org", fmt.Sprintf("m%d", i), fmt.Sprintf("@u%d:example.org", i%3),
			fmt.Sprintf("file %d.bin", i), "application/octet-stream", content, created.Add(time.Duration(i)*time.Minute)))
	}
	src.upload(t, "remote.org", "cached", "", "", "image/png", "remote", created) // another origin: not in the export
	dir := exportTo(t, src, archive.Entity{Server: "example.org"}, 700)
	parts := partFiles(t, dir)
	if len(parts) < 4 {
		t.Fatalf("parts = %v, want several", parts)
	}
	orders := map[string][]string{
		"manifest first":   parts,
		"manifest last":    append(slices.Clone(parts[1:]), parts[0]),
		"manifest between": append(append([]string{parts[2], parts[1]}, parts[0]), parts[3:]...),
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			dst := newRepo(t)
			rep, err := archive.ImportFiles(context.Background(), dst.importOptions(), order)
			if err != nil || rep.Imported != 7 || len(rep.Problems) != 0 {
				t.Fatalf("import = %+v, %v", rep, err)
			}
			for _, w := range want {
				m, content := dst.content(t, w.Origin, w.MediaID)
				_, original := src.content(t, w.Origin, w.MediaID)
				got := fmt.Sprint(m.UploadName, m.ContentType, m.UserID, m.SizeBytes, m.SHA256, m.CreatedAt.UnixMilli())
				exp := fmt.Sprint(w.UploadName, w.ContentType, w.UserID, w.SizeBytes, w.SHA256, w.CreatedAt.UnixMilli())
				if got != exp || content != original {
					t.Errorf("%s imported as %s, want %s (bytes equal: %v)", w.MediaID, got, exp, content == original)
				}
			}
			if _, err := dst.meta.Media(context.Background(), "remote.org", "cached"); err == nil {
				t.Error("media of another origin came with the server's export")
			}
			again, err := archive.ImportFiles(context.Background(), dst.importOptions(), order)
			if err != nil || again.Imported != 0 || again.Present != 7 {
				t.Errorf("second import = %+v, %v; want nothing imported", again, err)
			}
		})
	}
}

// mmrPart builds a part as matrix-media-repo writes one.
func mmrPart(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestImportMMRArchive: an archive in matrix-media-repo's version 1
// manifest imports what is valid and refuses what an archive may not do.
func TestImportMMRArchive(t *testing.T) {
	dir := t.TempDir()
	records := map[string]any{
		"mxc://example.org/good":     map[string]any{"name": "a.jpg", "file_name": "good.jpg", "size_bytes": 4, "content_type": "image/jpeg", "sha256": sumOf("good"), "origin": "example.org", "media_id": "good", "created_ts": 1_500_000_000_000, "uploader": "@alice:example.org"},
		"mxc://example.org/nohash":   map[string]any{"name": "", "file_name": "nohash", "size_bytes": 6, "content_type": "", "origin": "example.org", "media_id": "nohash", "created_ts": 1_500_000_000_000, "uploader": "not a user id"},
		"mxc://example.org/stolen":   map[string]any{"file_name": "stolen", "size_bytes": 6, "content_type": "text/plain", "origin": "example.org", "media_id": "stolen", "uploader": "@eve:evil.example"},
		"mxc://example.org/renamed":  map[string]any{"file_name": "renamed", "size_bytes": 7, "content_type": "text/plain", "origin": "example.org", "media_id": "other"},
		"mxc://example.org/tampered": map[string]any{"file_name": "tampered", "size_bytes": 8, "content_type": "text/plain", "sha256": sumOf("original"), "origin": "example.org", "media_id": "tampered"},
		"mxc://example.org/absent":   map[string]any{"file_name": "absent", "size_bytes": 1, "content_type": "text/plain", "origin": "example.org", "media_id": "absent"},
	}
	man, _ := json.Marshal(map[string]any{"version": 1, "user_id": "@alice:example.org", "created_ts": 1, "media": records})
	mmrPart(t, filepath.Join(dir, "alice-part-1.tgz"), map[string]string{
		"good.jpg": "good", "nohash": "nohash", "stolen": "stolen", "renamed": "renamed", "tampered": "tampered!", "unlisted": "x",
	})
	mmrPart(t, filepath.Join(dir, "alice-part-2.tgz"), map[string]string{"manifest.json": string(man), "index.html": "<html></html>"})
	dst := newRepo(t)
	rep, err := archive.ImportFiles(context.Background(), dst.importOptions(), []string{filepath.Join(dir, "alice-part-1.tgz"), filepath.Join(dir, "alice-part-2.tgz")})
	if err == nil || !strings.Contains(err.Error(), "1 media of the manifest never came") {
		t.Errorf("import error = %v, want the absent media named", err)
	}
	if rep.Imported != 2 || rep.Skipped != 2 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "tampered") {
		t.Errorf("report = %+v; want good and nohash imported, stolen and renamed skipped, tampered a problem", rep)
	}
	m, content := dst.content(t, "example.org", "good")
	if content != "good" || m.UploadName != "a.jpg" || m.UserID != "@alice:example.org" || m.CreatedAt.UnixMilli() != 1_500_000_000_000 || m.DatastoreID != "d" {
		t.Errorf("good = %+v %q", m, content)
	}
	if m, _ := dst.content(t, "example.org", "nohash"); m.UserID != "" || m.ContentType != "application/octet-stream" {
		t.Errorf("nohash = %+v; an invalid uploader counts as none, no type is octet-stream", m)
	}
	for _, id := range []string{"stolen", "other", "renamed", "tampered"} {
		if _, err := dst.meta.Media(context.Background(), "example.org", id); err == nil {
			t.Errorf("%s imported", id)
		}
	}
}

// TestImportKeepsExisting: media already here is kept as it is, not
// overwritten by an archive's.
func TestImportKeepsExisting(t *testing.T) {
	src, dst := newRepo(t), newRepo(t)
	src.upload(t, "example.org", "same", "@alice:example.org", "archived.txt", "text/plain", "archived bytes", time.Now())
	dst.upload(t, "example.org", "same", "@alice:example.org", "here.txt", "text/plain", "bytes here", time.Now())
	dir := exportTo(t, src, archive.Entity{UserID: "@alice:example.org"}, 1<<20)
	rep, err := archive.ImportFiles(context.Background(), dst.importOptions(), partFiles(t, dir))
	if err != nil || rep.Imported != 0 || rep.Present != 1 {
		t.Errorf("import = %+v, %v", rep, err)
	}
	if m, content := dst.content(t, "example.org", "same"); content != "bytes here" || m.UploadName != "here.txt" {
		t.Errorf("existing media became %q %q", m.UploadName, content)
	}
}

// TestImportRefusesQuarantinedBytes: the bytes quarantined here stay out.
func TestImportRefusesQuarantinedBytes(t *testing.T) {
	src, dst := newRepo(t), newRepo(t)
	src.upload(t, "example.org", "q", "@alice:example.org", "q.txt", "text/plain", "forbidden", time.Now())
	if _, err := dst.meta.Quarantine(context.Background(), []string{sumOf("forbidden")}, "", "@mod:example.org"); err != nil {
		t.Fatal(err)
	}
	dir := exportTo(t, src, archive.Entity{UserID: "@alice:example.org"}, 1<<20)
	rep, err := archive.ImportFiles(context.Background(), dst.importOptions(), partFiles(t, dir))
	if err != nil || rep.Imported != 0 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "quarantined") {
		t.Errorf("import = %+v, %v; want the quarantined bytes refused", rep, err)
	}
}
