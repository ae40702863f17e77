package preview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// serviceSite serves /page (OpenGraph with an image), /img.png, and /slow,
// which answers once release is closed. It counts requests.
func serviceSite(t *testing.T, release <-chan struct{}) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 6)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/page":
			fmt.Fprint(w, `<html><head><meta property="og:title" content="Hi"><meta property="og:image" content="/img.png"></head></html>`)
		case "/img.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(img.Bytes())
		case "/slow":
			select {
			case <-release:
				fmt.Fprint(w, `<html><head><title>Slow</title></head></html>`)
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// newService is a preview.Service on SQLite, storing images through a real
// media.Service on a disk datastore.
func newService(t *testing.T) (*preview.Service, *media.Service, storage.PreviewStore) {
	t.Helper()
	return newServiceOn(t, storagetest.OpenSQLite(t), config.Default().URLPreviews)
}

func newServiceOn(t *testing.T, meta *sqlite.Store, cfg config.URLPreviews) (*preview.Service, *media.Service, storage.PreviewStore) {
	t.Helper()
	stores, err := storage.NewDatastores(map[string]storage.BlobStore{"d": storagetest.OpenDisk(t)},
		storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	images, err := media.New(media.Options{Media: meta, Reservations: meta, Blobs: stores, Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { images.Close() })
	svc, err := preview.NewService(preview.ServiceOptions{
		Config: cfg, Timeout: 10 * time.Second,
		Fetcher: fetcher(t, []string{"127.0.0.0/8"}), Cache: meta, Images: images, Log: logrus.NewEntry(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc, images, meta
}

func mustURL(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestServiceCachesAnswers(t *testing.T) {
	site, hits := serviceSite(t, nil)
	svc, images, _ := newService(t)
	ctx := context.Background()
	now := time.Now()
	p, err := svc.Preview(ctx, "example.org", mustURL(t, site.URL+"/page"), now, "en")
	if err != nil || p.Status != 200 {
		t.Fatalf("Preview = %+v, %v", p, err)
	}
	var og map[string]any
	json.Unmarshal([]byte(p.Body), &og)
	uri, _ := og["og:image"].(string)
	id, ok := strings.CutPrefix(uri, "mxc://example.org/")
	if og["og:title"] != "Hi" || !ok || og["og:image:width"] != float64(8) {
		t.Fatalf("preview = %s", p.Body)
	}
	if _, err := images.Local(ctx, "example.org", id); err != nil {
		t.Errorf("og:image %s is not stored as media: %v", uri, err)
	}
	fetched := hits.Load()
	if _, err := svc.Preview(ctx, "example.org", mustURL(t, site.URL+"/page"), now, "en"); err != nil || hits.Load() != fetched {
		t.Errorf("second preview in the hour: %v, %d more requests; want the cached answer", err, hits.Load()-fetched)
	}
	failed, err := svc.Preview(ctx, "example.org", mustURL(t, "http://127.0.0.1:1/nothing"), now, "en")
	if err != nil || failed.Status != 502 || failed.Errcode != "M_UNKNOWN" || !strings.Contains(failed.Body, `"errcode":"M_UNKNOWN"`) {
		t.Errorf("unreachable page = %+v, %v; want a cached 502 M_UNKNOWN answer", failed, err)
	}
}

func TestServiceCancelledWaiterAndClose(t *testing.T) {
	release := make(chan struct{})
	site, hits := serviceSite(t, release)
	svc, _, _ := newService(t)
	slow := mustURL(t, site.URL+"/slow")

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := svc.Preview(ctx, "example.org", slow, time.Now(), "en")
		first <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	other := make(chan *storage.URLPreview, 1)
	go func() {
		p, _ := svc.Preview(context.Background(), "example.org", slow, time.Now(), "en")
		other <- p
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller = %v, want context.Canceled", err)
	}
	close(release)
	if p := <-other; p == nil || p.Status != 200 || !strings.Contains(p.Body, "Slow") {
		t.Errorf("other caller = %+v, want the page's preview", p)
	}
}

func TestServiceCloseCachesNothing(t *testing.T) {
	site, hits := serviceSite(t, make(chan struct{})) // /slow never answers
	svc, _, cache := newService(t)
	slow := mustURL(t, site.URL+"/slow")
	now := time.Now()
	got := make(chan error, 1)
	go func() {
		_, err := svc.Preview(context.Background(), "example.org", slow, now, "en")
		got <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	svc.Close()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("preview under Close = %v, want context.Canceled", err)
	}
	bucket := now.UnixMilli() / time.Hour.Milliseconds()
	if p, err := cache.URLPreview(context.Background(), "example.org", slow.String(), bucket, "en"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Close the cache holds %+v, %v; want nothing remembered of the page", p, err)
	}
}

func TestServiceKeepsTenantsApart(t *testing.T) {
	site, hits := serviceSite(t, nil)
	svc, _, _ := newService(t)
	ctx := context.Background()
	page := mustURL(t, site.URL+"/page")
	a, err := svc.Preview(ctx, "example.org", page, time.Now(), "en")
	if err != nil {
		t.Fatal(err)
	}
	fetched := hits.Load()
	b, err := svc.Preview(ctx, "other.example", page, time.Now(), "en")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Body, "mxc://example.org/") || !strings.Contains(b.Body, "mxc://other.example/") {
		t.Errorf("answers = %s and %s; want each homeserver's own image", a.Body, b.Body)
	}
	if hits.Load() == fetched {
		t.Error("other.example was answered from example.org's cache")
	}
}

func TestServiceTimestampsMakeNoExtraFetches(t *testing.T) {
	site, hits := serviceSite(t, nil)
	svc, _, cache := newService(t)
	ctx := context.Background()
	page := mustURL(t, site.URL+"/page")
	now := time.Now()
	if _, err := svc.Preview(ctx, "example.org", page, now, "en"); err != nil {
		t.Fatal(err)
	}
	fetched := hits.Load()
	for _, ts := range []time.Time{now.Add(24 * time.Hour), now.Add(90 * 24 * time.Hour), now.Add(-72 * time.Hour), time.UnixMilli(0)} {
		p, err := svc.Preview(ctx, "example.org", page, ts, "en")
		if err != nil || p.Status != 200 {
			t.Fatalf("ts %v: %+v, %v", ts, p, err)
		}
	}
	if n := hits.Load() - fetched; n != 0 {
		t.Errorf("timestamps in the future and the past made %d more requests, want 0", n)
	}
	// None of them added a row of its own.
	for _, ts := range []time.Time{now.Add(24 * time.Hour), now.Add(-72 * time.Hour)} {
		bucket := ts.UnixMilli() / time.Hour.Milliseconds()
		if _, err := cache.URLPreview(ctx, "example.org", page.String(), bucket, "en"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a row was cached for the hour of %v", ts)
		}
	}
}
