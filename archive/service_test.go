package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
	"github.com/mediarepo/mediarepo/tasks"
)

// service is an archive.Service and the task runner it runs on.
type service struct {
	*archive.Service
	tasks *tasks.Runner
}

func newService(t *testing.T, r *repo) service {
	t.Helper()
	cfg := config.Default()
	cfg.Homeservers = []config.Homeserver{{Name: "example.org"}}
	cfg.Archiving.TargetBytesPerPart = 1000
	runner, err := tasks.New(tasks.Options{Tasks: r.meta, Leases: r.meta, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(archive.Options{
		Live:   config.NewLive(cfg),
		Stores: archive.Stores{Catalog: r.meta, Exports: r.meta, Import: r.importOptions().Stores},
		Blobs:  r.ds, Tasks: runner, Remover: &retention.Remover{Store: r.meta, Blobs: r.ds.ByID(), Log: quietLog()},
		Datastore: "d", SpoolDir: t.TempDir(), Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runner.Sweep()
	t.Cleanup(func() { runner.Close() })
	return service{s, runner}
}

// waitTask waits for a task to end and returns it.
func waitTask(t *testing.T, r *repo, id int64) *storage.Task {
	t.Helper()
	return storagetest.WaitTask(t, r.meta, id)
}

// readParts downloads every part of an export into dir.
func readParts(t *testing.T, s service, id, dir string) []string {
	t.Helper()
	e, err := s.Export(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range e.Parts {
		meta, body, err := s.OpenPart(context.Background(), id, p.Index)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(body)
		body.Close()
		if int64(len(b)) != meta.Size || meta.Name != p.Name {
			t.Errorf("part %d: %d bytes named %s, listed as %d %s", p.Index, len(b), meta.Name, p.Size, p.Name)
		}
		path := filepath.Join(dir, p.Name)
		os.WriteFile(path, b, 0o600)
		paths = append(paths, path)
	}
	return paths
}

// TestServiceExportAndImport: an export runs as a task into the archives
// datastore, its parts read back by ID; another repository imports them
// part by part through its own task; deleting the export deletes its
// blobs.
func TestServiceExportAndImport(t *testing.T) {
	src := newRepo(t)
	for i, c := range []string{"one", "two", "three"} {
		src.upload(t, "example.org", c, "@alice:example.org", c+".txt", "text/plain", strings.Repeat(c, 200), time.UnixMilli(int64(1_600_000_000_000+i)))
	}
	s := newService(t, src)
	id, taskID, err := s.StartExport(context.Background(), archive.Entity{UserID: "@alice:example.org"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) < 41 || strings.Trim(id[:40], "0123456789abcdef") != "" {
		t.Errorf("export ID %q is not 40 hex characters and a number", id)
	}
	task := waitTask(t, src, taskID)
	if task.Name != "export_data" || task.Error != "" ||
		task.Params != `{"export_id":"`+id+`","include_s3_urls":true,"user_id":"@alice:example.org"}` {
		t.Errorf("task = %+v", task)
	}
	e, err := s.Export(context.Background(), id)
	if err != nil || e.Entity != "@alice:example.org" || len(e.Parts) != 3 || e.Parts[2].Name != archive.ManifestPart {
		t.Fatalf("export = %+v, %v", e, err)
	}
	if _, _, err := s.OpenPart(context.Background(), id, 9); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("part 9 = %v, want ErrNotFound", err)
	}
	parts := readParts(t, s, id, t.TempDir())

	dst := newRepo(t)
	ds := newService(t, dst)
	// The manifest part first, then the others one by one.
	first, _ := os.ReadFile(parts[2])
	importID, importTask, err := ds.StartImport(context.Background(), bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts[:2] {
		b, _ := os.ReadFile(p)
		if err := ds.AddImportPart(context.Background(), importID, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	task = waitTask(t, dst, importTask)
	if task.Name != "import_data" || task.Error != "" || task.Params != `{"export_id":"`+importID+`"}` {
		t.Errorf("import task = %+v", task)
	}
	for _, c := range []string{"one", "two", "three"} {
		if _, content := dst.content(t, "example.org", c); content != strings.Repeat(c, 200) {
			t.Errorf("%s imported as %q", c, content)
		}
	}
	// A finished import takes no more parts.
	if err := ds.AddImportPart(context.Background(), importID, bytes.NewReader(first)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("part for a finished import = %v, want ErrNotFound", err)
	}

	if err := s.DeleteExport(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Export(context.Background(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted export = %v", err)
	}
	for _, p := range e.Parts {
		if _, err := src.blobs.Open(context.Background(), p.SHA256); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("blob of deleted part %d: %v, want deleted", p.Index, err)
		}
	}
	if err := s.DeleteExport(context.Background(), "unknown"); err != nil {
		t.Errorf("delete of an unknown export = %v", err)
	}
}

// TestServiceImportClosedEarly: closing an import before its manifest
// came ends the task with why.
func TestServiceImportClosedEarly(t *testing.T) {
	src := newRepo(t)
	src.upload(t, "example.org", "a", "@alice:example.org", "", "text/plain", strings.Repeat("a", 1500), time.Now())
	dir := exportTo(t, src, archive.Entity{UserID: "@alice:example.org"}, 1000)
	dst := newRepo(t)
	s := newService(t, dst)
	part1, _ := os.ReadFile(filepath.Join(dir, "export-part-1.tgz"))
	id, task, err := s.StartImport(context.Background(), bytes.NewReader(part1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseImport(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got := waitTask(t, dst, task); got.Error != "no part with manifest.json came" {
		t.Errorf("task error = %q", got.Error)
	}
	if err := s.CloseImport(context.Background(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("close of an ended import = %v, want ErrNotFound", err)
	}
	_, task, err = s.StartImport(context.Background(), strings.NewReader("not an archive"))
	if err != nil {
		t.Fatalf("a part is checked when read, not when it comes: %v", err)
	}
	if got := waitTask(t, dst, task); !strings.Contains(got.Error, "not a gzip-compressed archive part") {
		t.Errorf("task of a bad part: error %q", got.Error)
	}
	// Stopping the server interrupts an import waiting for parts.
	_, task, err = s.StartImport(context.Background(), bytes.NewReader(part1))
	if err != nil {
		t.Fatal(err)
	}
	s.tasks.Close()
	if got := waitTask(t, dst, task); got.Error != "interrupted: the server stopped" {
		t.Errorf("task of an import when the server stopped: error %q", got.Error)
	}
}

// TestServiceImportPartTooLarge: a part larger than any export part can be
// is refused before it fills the disk.
func TestServiceImportPartTooLarge(t *testing.T) {
	r := newRepo(t)
	s := newService(t, r)
	huge := io.LimitReader(zeros{}, 400<<20) // over 1000 bytes + 100 MiB uploads + 64 MiB
	if _, _, err := s.StartImport(context.Background(), huge); !errors.Is(err, archive.ErrPartTooLarge) {
		t.Errorf("huge part = %v, want ErrPartTooLarge", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestServiceInterruptedTask: a task whose process stopped (nobody renews
// its lease) is marked failed, and what its export wrote is deleted.
func TestServiceInterruptedTask(t *testing.T) {
	r := newRepo(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	task := &storage.Task{Name: "export_data", Params: `{"export_id":"gone","user_id":"@a:example.org"}`, Start: start}
	if err := r.meta.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	r.meta.CreateExport(ctx, &storage.Export{ID: "gone", Entity: "@a:example.org", TaskID: task.ID, Created: start})
	staged, _ := r.ds.Stage(ctx, "d", strings.NewReader("half a part"))
	r.meta.AddExportPart(ctx, "gone", storage.ExportPart{Index: 1, Name: "export-part-1.tgz", Size: 11, SHA256: staged.SHA256(), DatastoreID: "d"}, staged.Commit)
	// The stopped process's lease ran out long ago.
	r.meta.AcquireLease(ctx, fmt.Sprintf("task:%d", task.ID), "stopped-process", start, time.Minute)
	newService(t, r)
	got := waitTask(t, r, task.ID)
	if !strings.Contains(got.Error, "interrupted") {
		t.Errorf("task error = %q, want interrupted", got.Error)
	}
	if _, err := r.meta.Export(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("interrupted export = %v, want deleted", err)
	}
	if _, err := r.blobs.Open(ctx, staged.SHA256()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("its part's blob: %v, want deleted", err)
	}
}

// TestServiceNoArchivesDatastore: without a datastore for archives an
// export is refused with why.
func TestServiceNoArchivesDatastore(t *testing.T) {
	r := newRepo(t)
	runner, err := tasks.New(tasks.Options{Tasks: r.meta, Leases: r.meta, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	s, err := archive.New(archive.Options{
		Live:   config.NewLive(config.Default()),
		Stores: archive.Stores{Catalog: r.meta, Exports: r.meta, Import: r.importOptions().Stores},
		Blobs:  r.ds, Tasks: runner, Remover: &retention.Remover{Store: r.meta, Blobs: r.ds.ByID(), Log: quietLog()}, Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartExport(context.Background(), archive.Entity{Server: "example.org"}, false); !errors.Is(err, archive.ErrNoDatastore) {
		t.Errorf("export = %v, want ErrNoDatastore", err)
	}
}
