package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/storagetest"
	"github.com/mediarepo/mediarepo/tasks"
	"github.com/mediarepo/mediarepo/transfer"
)

// db is what the tests need of a metadata store: the engine's interfaces.
type db interface {
	transfer.Store
	storage.MediaStore
	storage.ThumbnailStore
	storage.TaskStore
	storage.LeaseStore
}

var engines = map[string]func(t *testing.T) db{
	"sqlite":   func(t *testing.T) db { return storagetest.OpenSQLite(t) },
	"postgres": func(t *testing.T) db { return storagetest.OpenPostgres(t) },
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// world is a metadata store and two disk datastores, "a" and "b".
type world struct {
	db     db
	a, b   *disk.Store
	blobs  map[string]storage.BlobStore
	stored map[string][]byte // every stored blob's bytes by SHA-256
}

func newWorld(t *testing.T, d db) *world {
	w := &world{db: d, a: storagetest.OpenDisk(t), b: storagetest.OpenDisk(t), stored: map[string][]byte{}}
	w.blobs = map[string]storage.BlobStore{"a": w.a, "b": w.b}
	return w
}

// media stores content in datastore a as media id, created at created.
func (w *world) media(t *testing.T, id string, content []byte, created time.Time) *storage.Media {
	t.Helper()
	ctx := context.Background()
	sum, size, err := storage.Put(ctx, w.a, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	w.stored[sum] = content
	m := &storage.Media{Origin: "example.org", MediaID: id, ContentType: "image/png", SHA256: sum, SizeBytes: size,
		DatastoreID: "a", CreatedAt: created}
	if err := w.db.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) thumbnail(t *testing.T, of *storage.Media, content []byte) {
	t.Helper()
	ctx := context.Background()
	sum, size, err := storage.Put(ctx, w.a, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	w.stored[sum] = content
	th := &storage.Thumbnail{Origin: of.Origin, MediaID: of.MediaID, Width: 32, Height: 32, Method: "crop",
		ContentType: "image/jpeg", SHA256: sum, SizeBytes: size, DatastoreID: "a", CreatedAt: time.Now()}
	if err := w.db.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
}

func (w *world) run(t *testing.T, before time.Time) (transfer.Progress, error) {
	t.Helper()
	return transfer.Run(context.Background(), transfer.Options{
		Store: w.db, Blobs: w.blobs, From: "a", To: "b", Before: before, Log: quietLog(), Batch: 3,
	})
}

// checkRows checks that every media row of ids is in datastore want and
// that its blob there has the bytes it was stored with.
func (w *world) checkRows(t *testing.T, want string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		m, err := w.db.Media(ctx, "example.org", id)
		if err != nil {
			t.Fatalf("media %s: %v", id, err)
		}
		if m.DatastoreID != want {
			t.Errorf("media %s is in datastore %s, want %s", id, m.DatastoreID, want)
			continue
		}
		w.checkBlob(t, want, m.SHA256)
	}
}

func (w *world) checkBlob(t *testing.T, ds, sum string) {
	t.Helper()
	r, err := w.blobs[ds].Open(context.Background(), sum)
	if err != nil {
		t.Errorf("blob %s in %s: %v", sum, ds, err)
		return
	}
	defer r.Close()
	h := sha256.New()
	io.Copy(h, r)
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		t.Errorf("blob %s in %s hashes to %s", sum, ds, got)
	}
}

func content(i int) []byte {
	return []byte(fmt.Sprintf("media number %d %s", i, strings.Repeat("x", i*100)))
}

func TestTransferMovesEverything(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, open(t))
			var ids []string
			for i := range 10 {
				ids = append(ids, fmt.Sprint("m", i))
				w.media(t, ids[i], content(i%8), time.Now().Add(-time.Hour)) // two pairs share bytes
			}
			first, _ := w.db.Media(context.Background(), "example.org", "m0")
			w.thumbnail(t, first, []byte("a thumbnail"))

			p, err := w.run(t, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Blobs != 9 || p.Rows != 11 || p.Deleted != 9 || p.Skipped != 0 || p.Bytes == 0 {
				t.Errorf("progress = %+v, want 9 blobs (8 of media, 1 thumbnail), 11 rows, 9 deleted", p)
			}
			w.checkRows(t, "b", ids...)
			th, _ := w.db.Thumbnails(context.Background(), "example.org", "m0")
			if len(th) != 1 || th[0].DatastoreID != "b" {
				t.Errorf("thumbnail = %+v, want in b", th)
			}
			if n := storagetest.CountBlobs(t, w.a.Root()); n != 0 {
				t.Errorf("%d blobs left in the source, want none", n)
			}
			for sum := range w.stored {
				w.checkBlob(t, "b", sum)
			}
			// A second run finds nothing to do.
			if p, err := w.run(t, time.Time{}); err != nil || p.Blobs != 0 {
				t.Errorf("second run = %+v, %v; want nothing moved", p, err)
			}
		})
	}
}

func TestTransferBefore(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, open(t))
			w.media(t, "old", content(1), time.Now().Add(-48*time.Hour))
			w.media(t, "oldtwin", content(2), time.Now().Add(-48*time.Hour))
			w.media(t, "newtwin", content(2), time.Now())
			w.media(t, "new", content(3), time.Now())
			p, err := w.run(t, time.Now().Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if p.Blobs != 2 || p.Rows != 2 || p.Deleted != 1 {
				t.Errorf("progress = %+v, want 2 blobs moved, 1 deleted (the other still has a recent row)", p)
			}
			w.checkRows(t, "b", "old", "oldtwin")
			w.checkRows(t, "a", "new", "newtwin")
		})
	}
}

func TestTransferSkipsWhatTheSourceLost(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, open(t))
			gone := w.media(t, "gone", content(1), time.Now())
			bad := w.media(t, "damaged", content(2), time.Now())
			w.media(t, "fine", content(3), time.Now())
			if err := w.a.Delete(context.Background(), gone.SHA256); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(w.a.Root(), bad.SHA256[0:2], bad.SHA256[2:4], bad.SHA256)
			if err := os.WriteFile(path, []byte("bit rot"), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := w.run(t, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Blobs != 1 || p.Skipped != 2 || len(p.Problems) != 2 {
				t.Errorf("progress = %+v, want 1 moved and 2 skipped with their problems", p)
			}
			w.checkRows(t, "b", "fine")
			for _, id := range []string{"gone", "damaged"} {
				if m, _ := w.db.Media(context.Background(), "example.org", id); m.DatastoreID != "a" {
					t.Errorf("%s moved to %s; a blob that is not there must not be", id, m.DatastoreID)
				}
			}
			if _, err := w.b.Open(context.Background(), bad.SHA256); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("damaged bytes reached the destination: %v", err)
			}
		})
	}
}

// TestTransferStopsWhenTheDestinationRefuses: a destination that cannot be
// written stops the transfer with every row and blob at the source; once it
// can, a second run moves everything.
func TestTransferStopsWhenTheDestinationRefuses(t *testing.T) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, open(t))
			var ids []string
			for i := range 5 {
				ids = append(ids, fmt.Sprint("m", i))
				w.media(t, ids[i], content(i), time.Now())
			}
			// The destination's directory is replaced by a file: every write fails.
			root := w.b.Root()
			if err := os.RemoveAll(root); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(root, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := w.run(t, time.Time{})
			if err == nil || p.Blobs != 0 {
				t.Fatalf("transfer to an unwritable datastore = %+v, %v; want it stopped before moving anything", p, err)
			}
			w.checkRows(t, "a", ids...)

			os.Remove(root)
			b, err := disk.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			w.b, w.blobs["b"] = b, b
			if p, err := w.run(t, time.Time{}); err != nil || p.Blobs != 5 {
				t.Fatalf("second run = %+v, %v; want every blob moved", p, err)
			}
			w.checkRows(t, "b", ids...)
		})
	}
}

func TestServiceRunsATaskUnderTheSourcesLease(t *testing.T) {
	d := storagetest.OpenSQLite(t)
	w := newWorld(t, d)
	for i := range 4 {
		w.media(t, fmt.Sprint("m", i), content(i), time.Now())
	}
	runner, err := tasks.New(tasks.Options{Tasks: d, Leases: d, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	changed := 0
	svc, err := transfer.NewService(transfer.ServiceOptions{Store: d, Blobs: w.blobs, Tasks: runner, Log: quietLog(), Changed: func() { changed++ }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct{ from, to, want string }{
		{"a", "a", "the same"}, {"nope", "b", "Source datastore"}, {"a", "nope", "Target datastore"},
	} {
		if _, err := svc.Start(ctx, c.from, c.to, time.Now()); !errors.Is(err, transfer.ErrUnknownDatastore) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%s, %s) = %v, want ErrUnknownDatastore saying %q", c.from, c.to, err, c.want)
		}
	}

	// Another process holds the source's lease: the task fails, nothing moves.
	if ok, err := d.AcquireLease(ctx, "transfer:a", "another-process", time.Now(), time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	id, err := svc.Start(ctx, "a", "b", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if task := storagetest.WaitTask(t, d, id); !strings.Contains(task.Error, "another process") {
		t.Errorf("task with the lease held elsewhere = %+v, want it failed saying so", task)
	}
	w.checkRows(t, "a", "m0", "m1", "m2", "m3")
	d.ReleaseLease(ctx, "transfer:a", "another-process")

	id, err = svc.Start(ctx, "a", "b", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	task := storagetest.WaitTask(t, d, id)
	var p transfer.Progress
	if err := json.Unmarshal([]byte(task.Progress), &p); task.Error != "" || err != nil || p.Blobs != 4 || task.Name != transfer.TaskName {
		t.Errorf("task = %+v (progress %+v, %v); want finished with 4 blobs moved", task, p, err)
	}
	var params transfer.Params
	json.Unmarshal([]byte(task.Params), &params)
	if params.Source != "a" || params.Target != "b" || params.BeforeTS == 0 {
		t.Errorf("params = %s", task.Params)
	}
	if changed == 0 {
		t.Error("caches were not told that rows moved")
	}
	w.checkRows(t, "b", "m0", "m1", "m2", "m3")
}
