package retention_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// clock is a settable time, for the jobs' cut-offs.
type clock struct{ at atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.at.Load()) }
func (c *clock) set(t time.Time)     { c.at.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.at.Add(d.Milliseconds()) }

// store puts content in blobs and a media row for it.
func store(t *testing.T, meta allStores, blobs storage.BlobStore, origin, id, content string, created time.Time) *storage.Media {
	t.Helper()
	sum := put(t, blobs, content)
	m := &storage.Media{Origin: origin, MediaID: id, ContentType: "text/plain", SHA256: sum, SizeBytes: int64(len(content)), DatastoreID: "d", CreatedAt: created}
	if err := meta.CreateMedia(context.Background(), m, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExpireRemoteMediaByLastUse(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			meta := openStores(t, backend)
			blobs := storagetest.OpenDisk(t)
			var c clock
			start := time.Now()
			c.set(start)
			cfg := config.Default()
			cfg.Homeservers = []config.Homeserver{{Name: "example.org"}}
			cfg.Downloads.ExpireAfterDays = 30
			svc := newService(t, storesOf(meta), map[string]storage.BlobStore{"d": blobs}, cfg, c.now)

			old := store(t, meta, blobs, "remote.org", "old", "old remote", start)
			used := store(t, meta, blobs, "remote.org", "used", "used remote", start)
			pinned := store(t, meta, blobs, "remote.org", "pinned", "pinned remote", start)
			bad := store(t, meta, blobs, "remote.org", "bad", "quarantined remote", start)
			local := store(t, meta, blobs, "example.org", "local", "local media", start)
			twin := store(t, meta, blobs, "example.org", "twin", "old remote", start) // the old one's bytes, locally
			if err := meta.SetProtected(ctx, "remote.org", "pinned", true); err != nil {
				t.Fatal(err)
			}
			if _, err := meta.Quarantine(ctx, []string{bad.SHA256}, "", "@mod:example.org"); err != nil {
				t.Fatal(err)
			}
			// 20 days on, "used" is downloaded; 40 days on, only it is recent.
			c.add(20 * 24 * time.Hour)
			if err := meta.RecordAccess(ctx, map[storage.MediaKey]time.Time{{Origin: "remote.org", MediaID: "used"}: c.now()}); err != nil {
				t.Fatal(err)
			}
			c.add(20 * 24 * time.Hour)
			res, err := svc.ExpireRemoteMedia(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != 1 || res.Blobs != 0 || res.Bytes != int64(len("old remote")) {
				t.Errorf("removed %+v, want the one idle remote media, its blob kept for the local twin", res)
			}
			for _, m := range []*storage.Media{used, pinned, bad, local, twin} {
				if _, err := meta.Media(ctx, m.Origin, m.MediaID); err != nil {
					t.Errorf("%s/%s removed: %v", m.Origin, m.MediaID, err)
				}
			}
			if _, err := meta.Media(ctx, old.Origin, old.MediaID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("idle remote media kept: %v", err)
			}
			if _, err := blobs.Open(ctx, old.SHA256); err != nil {
				t.Errorf("a blob still used locally was deleted: %v", err)
			}
			// Purged remote media can be fetched again: its ID is not tombstoned.
			again := &storage.Media{Origin: "remote.org", MediaID: "old", ContentType: "text/plain", SHA256: old.SHA256, SizeBytes: old.SizeBytes, DatastoreID: "d", CreatedAt: c.now()}
			if err := meta.CreateMedia(ctx, again, storage.Quota{}, nil); err != nil {
				t.Errorf("refetch of expired remote media: %v", err)
			}
		})
	}
}

func TestExpireThumbnailsPreviewsReservations(t *testing.T) {
	ctx := context.Background()
	meta := storagetest.OpenSQLite(t)
	blobs := storagetest.OpenDisk(t)
	var c clock
	start := time.UnixMilli(time.Now().UnixMilli())
	c.set(start)
	cfg := config.Default()
	cfg.Thumbnails.ExpireAfterDays, cfg.URLPreviews.ExpireAfterDays = 10, 7
	svc := newService(t, storesOf(meta), map[string]storage.BlobStore{"d": blobs}, cfg, c.now)
	sum := put(t, blobs, "a thumbnail")
	th := &storage.Thumbnail{Origin: "example.org", MediaID: "m", Width: 32, Height: 32, Method: "crop", ContentType: "image/png", SHA256: sum, SizeBytes: 11, DatastoreID: "d", CreatedAt: start}
	if err := meta.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	if err := meta.CreateURLPreview(ctx, &storage.URLPreview{ServerName: "example.org", URL: "https://x", Lang: "en", Status: 200, Body: "{}", CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	p := &storage.Pending{Origin: "example.org", MediaID: "p", UserID: "@a:example.org", CreatedAt: start, ExpiresAt: start.Add(24 * time.Hour)}
	if err := meta.CreatePending(ctx, p, 0); err != nil {
		t.Fatal(err)
	}
	c.add(8 * 24 * time.Hour) // previews and the reservation are past their time, thumbnails not
	if res, _ := svc.ExpireThumbnails(ctx); res.Rows != 0 {
		t.Errorf("thumbnails of 8 days removed: %+v", res)
	}
	if res, err := svc.ExpirePreviews(ctx); err != nil || res.Rows != 1 {
		t.Errorf("ExpirePreviews = %+v, %v", res, err)
	}
	if res, err := svc.ExpireReservations(ctx); err != nil || res.Rows != 1 {
		t.Errorf("ExpireReservations = %+v, %v", res, err)
	}
	c.add(3 * 24 * time.Hour)
	if res, err := svc.ExpireThumbnails(ctx); err != nil || res.Rows != 1 || res.Blobs != 1 {
		t.Errorf("ExpireThumbnails at 11 days = %+v, %v", res, err)
	}
	if _, err := blobs.Open(ctx, sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired thumbnail's blob kept: %v", err)
	}
}

// Two processes on one database: each job runs in one of them at a time,
// and the other takes it over when the first stops.
func TestOneProcessRunsEachJob(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	cfg := config.Default()
	cfg.URLPreviews.ExpireAfterDays = 7
	var runs [2]atomic.Int32
	var svcs [2]*retention.Service
	for i := range svcs {
		st := storesOf(openPostgresAt(t, dsn))
		st.Previews = &countingPreviews{PreviewStore: st.Previews, n: &runs[i]}
		svcs[i] = newService(t, st, nil, cfg, time.Now)
	}
	job := func(s *retention.Service) retention.Job {
		for _, j := range s.Jobs() {
			if j.Name == "url_previews" {
				return j
			}
		}
		t.Fatal("no url_previews job")
		return retention.Job{}
	}
	for range 3 {
		for _, s := range svcs {
			s.RunOnce(context.Background(), job(s))
		}
	}
	if a, b := runs[0].Load(), runs[1].Load(); a != 3 || b != 0 {
		t.Errorf("runs per process = %d, %d; want 3, 0 (the first holds the lease)", a, b)
	}
	svcs[0].Close() // gives its leases up
	svcs[1].RunOnce(context.Background(), job(svcs[1]))
	if b := runs[1].Load(); b != 1 {
		t.Errorf("after the first stopped, the second ran %d times, want 1", b)
	}
}

// countingPreviews counts the preview sweeps a process makes.
type countingPreviews struct {
	storage.PreviewStore
	n *atomic.Int32
}

func (c *countingPreviews) DeleteURLPreviews(ctx context.Context, before time.Time) (int64, error) {
	c.n.Add(1)
	return c.PreviewStore.DeleteURLPreviews(ctx, before)
}

func openStores(t *testing.T, backend string) allStores {
	if backend == "postgres" {
		return storagetest.OpenPostgres(t)
	}
	return storagetest.OpenSQLite(t)
}

// openPostgresAt opens a store on dsn, as another process would.
func openPostgresAt(t *testing.T, dsn string) *postgres.Store {
	s, _, err := postgres.Open(context.Background(), dsn, config.Pool{MaxConnections: 2, MaxIdleConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
