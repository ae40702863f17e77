package retention_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// age sets a blob's time to two days ago.
func age(t *testing.T, root, sum string) {
	p := filepath.Join(root, sum[0:2], sum[2:4], sum)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, b storage.BlobStore, content string) string {
	sum, _, err := storage.Put(context.Background(), b, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestSweepOrphans(t *testing.T) {
	ctx := context.Background()
	meta := storagetest.OpenSQLite(t)
	blobs := storagetest.OpenDisk(t)
	used, thumb, orphan, fresh := put(t, blobs, "used"), put(t, blobs, "thumb"), put(t, blobs, "orphan"), put(t, blobs, "fresh")
	for _, s := range []string{used, thumb, orphan} {
		age(t, blobs.Root(), s)
	}
	if err := meta.CreateMedia(ctx, &storage.Media{Origin: "example.org", MediaID: "m", SHA256: used, SizeBytes: 4, DatastoreID: "d", ContentType: "text/plain", CreatedAt: time.Now()}, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := meta.CreateThumbnail(ctx, &storage.Thumbnail{Origin: "example.org", MediaID: "m", Width: 32, Height: 32, Method: "crop", ContentType: "image/png", SHA256: thumb, SizeBytes: 5, DatastoreID: "d", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	svc := newServiceWithGrace(t, meta, blobs, 24)
	res, err := svc.SweepOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 1 || res.Bytes != 6 || res.Examined != 3 {
		t.Errorf("sweep = %+v, want the one old orphan (6 bytes) of 3 old blobs deleted", res)
	}
	for sum, want := range map[string]bool{used: true, thumb: true, orphan: false, fresh: true} {
		if _, err := blobs.Open(ctx, sum); (err == nil) != want {
			t.Errorf("blob %.8s present = %v, want %v", sum, err == nil, want)
		}
	}
}

func newServiceWithGrace(t *testing.T, meta allStores, blobs storage.BlobStore, hours int) *retention.Service {
	cfg := config.Default()
	cfg.Retention = config.Retention{OrphanBlobGraceHours: hours, OrphanBlobSweepHours: 1000}
	return newService(t, storesOf(meta), map[string]storage.BlobStore{"d": blobs}, cfg, time.Now)
}

// allStores is what the tests put rows through, and the jobs' stores: one
// engine, as in production.
type allStores interface {
	storage.RetentionStore
	storage.CatalogStore
	storage.PurgeStore
	storage.ReservationStore
	storage.PreviewStore
	storage.LeaseStore
	storage.MediaStore
	storage.ThumbnailStore
	storage.ModerationStore
	storage.AccessStore
}

func storesOf(s allStores) retention.Stores {
	return retention.Stores{Refs: s, Catalog: s, Purge: s, Reservations: s, Previews: s, Leases: s}
}

// newService is a retention.Service whose jobs only run when a test says.
func newService(t *testing.T, meta retention.Stores, blobs map[string]storage.BlobStore, cfg *config.Config, now func() time.Time) *retention.Service {
	log := logrus.New()
	log.SetOutput(io.Discard)
	events := bus.New(nil, logrus.NewEntry(log))
	t.Cleanup(func() { events.Close() })
	svc, err := retention.New(retention.Options{
		Config: cfg, Blobs: blobs, Stores: meta, Bus: events, Log: logrus.NewEntry(log), Now: now, Start: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func TestSweepRacingUploadsOfTheSameBytes(t *testing.T) {
	// Uploads of bytes whose old blob is an orphan keep going while sweeps
	// run: every row written points at a blob that is there at the end.
	ctx := context.Background()
	meta := storagetest.OpenSQLite(t)
	blobs := storagetest.OpenDisk(t)
	svc := newServiceWithGrace(t, meta, blobs, 24)
	const n = 40
	var rows []string
	for i := range n {
		sum := put(t, blobs, fmt.Sprint("content ", i))
		age(t, blobs.Root(), sum) // every blob starts as an old orphan
		rows = append(rows, sum)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, sum := range rows { // what an upload does: stage, then commit inside the row's transaction
			st, err := blobs.Stage(ctx, strings.NewReader(fmt.Sprint("content ", i)))
			if err != nil {
				t.Error(err)
				return
			}
			m := &storage.Media{Origin: "example.org", MediaID: fmt.Sprint("m", i), SHA256: sum, SizeBytes: st.Size(), DatastoreID: "d", ContentType: "text/plain", CreatedAt: time.Now()}
			if err := meta.CreateMedia(ctx, m, storage.Quota{}, st.Commit); err != nil {
				t.Error(err)
			}
			st.Abort()
		}
	}()
	for range 5 {
		if _, err := svc.SweepOrphans(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, sum := range rows {
		if _, err := meta.Media(ctx, "example.org", fmt.Sprint("m", i)); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if _, err := blobs.Open(ctx, sum); err != nil {
			t.Errorf("row %d's blob is gone: %v", i, err)
		}
	}
}
