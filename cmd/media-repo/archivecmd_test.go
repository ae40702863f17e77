package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// writeRepoConfig writes the config of a repository on SQLite in dir.
func writeRepoConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "media-repo.yaml")
	cfg := fmt.Sprintf(`
database: {sqlite: %q}
homeservers: [{name: example.org, csApi: "http://127.0.0.1:1"}]
datastores: [{type: file, id: local, forKinds: [all], opts: {path: %q}}]
`, filepath.Join(dir, "media-repo.db"), filepath.Join(dir, "media"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExportAndImportCommands: media-repo export writes a user's media as
// an archive; media-repo import archive brings it into another repository
// with the same IDs and bytes, and a second time imports nothing.
func TestExportAndImportCommands(t *testing.T) {
	ctx := context.Background()
	srcCfg := writeRepoConfig(t, t.TempDir())
	m, code := openTarget(ctx, srcCfg, io.Discard)
	if m == nil {
		t.Fatalf("open: exit %d", code)
	}
	contents := map[string]string{"one": strings.Repeat("1", 5000), "two": strings.Repeat("2", 5000)}
	for id, content := range contents {
		staged, err := m.blobs.Stage(ctx, "local", strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		md := &storage.Media{Origin: "example.org", MediaID: id, UploadName: id + ".txt", ContentType: "text/plain", UserID: "@alice:example.org",
			SHA256: staged.SHA256(), SizeBytes: staged.Size(), DatastoreID: "local", CreatedAt: time.Now()}
		if err := m.db.CreateMedia(ctx, md, storage.Quota{}, staged.Commit); err != nil {
			t.Fatal(err)
		}
	}
	m.closeAll()

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runExport(ctx, []string{"-config", srcCfg, "-user", "@alice:example.org", "-out", out, "-part-bytes", "4096"}, &stdout, &stderr); code != 0 {
		t.Fatalf("export: exit %d\n%s", code, stderr.String())
	}
	parts, _ := filepath.Glob(filepath.Join(out, "*.tgz"))
	if len(parts) != 3 || !strings.Contains(stdout.String(), "3 parts") {
		t.Fatalf("export wrote %v; said %s", parts, stdout.String())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(out, ".part-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	dstDir := t.TempDir()
	dstCfg := writeRepoConfig(t, dstDir)
	for _, run := range []struct{ args, want string }{
		{"-dry-run", "would import 2"},
		{"", "imported 2"},
		{"", "imported 0 (0 bytes), 2 already here"},
	} {
		args := append([]string{"archive", "-config", dstCfg}, strings.Fields(run.args)...)
		stdout.Reset()
		stderr.Reset()
		if code := runImport(ctx, append(args, parts...), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), run.want) {
			t.Errorf("import %s: exit %d, %s; want %q\n%s", run.args, code, stdout.String(), run.want, stderr.String())
		}
	}
	dst, _ := openTarget(ctx, dstCfg, io.Discard)
	defer dst.closeAll()
	for id, content := range contents {
		md, err := dst.db.Media(ctx, "example.org", id)
		if err != nil {
			t.Fatalf("%s not imported: %v", id, err)
		}
		r, _ := dst.blobs.Open(ctx, md.DatastoreID, md.SHA256)
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != content || md.UploadName != id+".txt" || md.UserID != "@alice:example.org" {
			t.Errorf("%s imported as %+v with %d bytes", id, md, len(b))
		}
	}
	// Only some of the parts: the import says what did not come.
	stdout.Reset()
	stderr.Reset()
	other := writeRepoConfig(t, t.TempDir())
	var noManifest []string
	for _, p := range parts {
		if filepath.Base(p) != "export-manifest.tgz" {
			noManifest = append(noManifest, p)
		}
	}
	if code := runImport(ctx, append([]string{"archive", "-config", other}, noManifest...), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no part with manifest.json came") {
		t.Errorf("import without the manifest: exit %d, %s", code, stderr.String())
	}
}

func TestExportCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-user", "@a:example.org", "-server", "example.org", "-out", "x"},
		{"-out", "x"},
		{"-user", "alice", "-out", "x"},
		{"-user", "@a:example.org"},
	} {
		var stderr bytes.Buffer
		if code := runExport(context.Background(), args, io.Discard, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("export %v: exit %d, %q; want 2 with why", args, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := runImport(context.Background(), []string{"archive", "-config", "x.yaml"}, io.Discard, &stderr); code != 2 {
		t.Errorf("import archive without parts: exit %d", code)
	}
}
