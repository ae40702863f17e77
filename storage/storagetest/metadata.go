package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// RunMetadataStore checks the MetadataStore contract against a fresh store
// from open for each case.
func RunMetadataStore(t *testing.T, open func(t *testing.T) storage.MetadataStore) {
	ctx := context.Background()
	sample := func() *storage.Media {
		return &storage.Media{
			Origin: "example.org", MediaID: "abcDEF123_-", UploadName: "cat 🐱; \"x\".png",
			ContentType: "img/png", UserID: "@alice:example.org",
			SHA256:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			SizeBytes: 4, DatastoreID: "local",
			CreatedAt: time.UnixMilli(time.Now().UnixMilli()), Authenticated: true,
		}
	}

	t.Run("round trip", func(t *testing.T) {
		s := open(t)
		want := sample()
		if err := s.CreateMedia(ctx, want, storage.Quota{}); err != nil {
			t.Fatalf("CreateMedia: %v", err)
		}
		got, err := s.Media(ctx, want.Origin, want.MediaID)
		if err != nil {
			t.Fatalf("Media: %v", err)
		}
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
		}
		got.CreatedAt = want.CreatedAt
		if *got != *want {
			t.Errorf("Media = %+v, want %+v", *got, *want)
		}
	})

	t.Run("empty optional fields", func(t *testing.T) {
		s := open(t)
		want := sample()
		want.UploadName, want.UserID, want.Authenticated = "", "", false
		if err := s.CreateMedia(ctx, want, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Media(ctx, want.Origin, want.MediaID)
		if err != nil {
			t.Fatal(err)
		}
		if got.UploadName != "" || got.UserID != "" || got.Authenticated {
			t.Errorf("Media = %+v, want empty name and user, not authenticated", *got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		s := open(t)
		m, err := s.Media(ctx, "example.org", "missing")
		if !errors.Is(err, storage.ErrNotFound) || m != nil {
			t.Errorf("Media = %v, %v; want nil, ErrNotFound", m, err)
		}
	})

	t.Run("origin is part of the key", func(t *testing.T) {
		s := open(t)
		a := sample()
		b := sample()
		b.Origin, b.ContentType = "other.org", "text/plain"
		for _, m := range []*storage.Media{a, b} {
			if err := s.CreateMedia(ctx, m, storage.Quota{}); err != nil {
				t.Fatalf("CreateMedia(%s): %v", m.Origin, err)
			}
		}
		got, err := s.Media(ctx, "other.org", b.MediaID)
		if err != nil || got.ContentType != "text/plain" {
			t.Errorf("Media(other.org) = %+v, %v; want text/plain", got, err)
		}
	})

	t.Run("duplicate is ErrExists and changes nothing", func(t *testing.T) {
		s := open(t)
		first := sample()
		if err := s.CreateMedia(ctx, first, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		second := sample()
		second.ContentType = "text/html"
		if err := s.CreateMedia(ctx, second, storage.Quota{}); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second CreateMedia = %v, want ErrExists", err)
		}
		got, _ := s.Media(ctx, first.Origin, first.MediaID)
		if got == nil || got.ContentType != first.ContentType {
			t.Errorf("after duplicate, Media = %+v; want the first row", got)
		}
	})

	t.Run("concurrent creates of one key: exactly one wins", func(t *testing.T) {
		s := open(t)
		const n = 8
		errs := concurrently(n, func(i int) error {
			m := sample()
			m.UploadName = fmt.Sprint(i)
			return s.CreateMedia(ctx, m, storage.Quota{})
		})
		if wins := successes(t, errs, storage.ErrExists); wins != 1 {
			t.Errorf("%d creates succeeded, want 1", wins)
		}
	})

	t.Run("large size survives", func(t *testing.T) {
		s := open(t)
		m := sample()
		m.SizeBytes = 5 << 40
		if err := s.CreateMedia(ctx, m, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Media(ctx, m.Origin, m.MediaID)
		if err != nil || got.SizeBytes != 5<<40 {
			t.Errorf("SizeBytes = %v, %v; want %d", got, err, int64(5<<40))
		}
	})

	thumb := func(w, h int, method string, animated bool) *storage.Thumbnail {
		return &storage.Thumbnail{
			Origin: "example.org", MediaID: "abcDEF123_-", Width: w, Height: h, Method: method,
			Animated: animated, ContentType: "image/jpeg", SHA256: sample().SHA256, SizeBytes: 1234,
			DatastoreID: "thumbs", CreatedAt: time.UnixMilli(time.Now().UnixMilli()),
		}
	}

	t.Run("thumbnails round trip", func(t *testing.T) {
		s := open(t)
		if got, err := s.Thumbnails(ctx, "example.org", "abcDEF123_-"); err != nil || len(got) != 0 {
			t.Fatalf("Thumbnails before any = %v, %v; want none, nil", got, err)
		}
		want := []*storage.Thumbnail{thumb(32, 32, "crop", false), thumb(32, 32, "scale", false), thumb(32, 32, "crop", true), thumb(800, 600, "scale", false)}
		for _, th := range want {
			if err := s.CreateThumbnail(ctx, th); err != nil {
				t.Fatalf("CreateThumbnail(%+v): %v", th, err)
			}
		}
		other := thumb(32, 32, "crop", false)
		other.MediaID = "other"
		s.CreateThumbnail(ctx, other)
		got, err := s.Thumbnails(ctx, "example.org", "abcDEF123_-")
		if err != nil || len(got) != len(want) {
			t.Fatalf("Thumbnails = %d, %v; want %d", len(got), err, len(want))
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				if g.Width == w.Width && g.Height == w.Height && g.Method == w.Method && g.Animated == w.Animated {
					found = g.SHA256 == w.SHA256 && g.SizeBytes == w.SizeBytes && g.DatastoreID == w.DatastoreID &&
						g.ContentType == w.ContentType && g.CreatedAt.Equal(w.CreatedAt)
				}
			}
			if !found {
				t.Errorf("thumbnail %+v not listed intact in %+v", *w, got)
			}
		}
	})

	t.Run("duplicate thumbnail is ErrExists", func(t *testing.T) {
		s := open(t)
		if err := s.CreateThumbnail(ctx, thumb(96, 96, "crop", false)); err != nil {
			t.Fatal(err)
		}
		again := thumb(96, 96, "crop", false)
		again.SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
		if err := s.CreateThumbnail(ctx, again); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second CreateThumbnail = %v, want ErrExists", err)
		}
		got, _ := s.Thumbnails(ctx, "example.org", "abcDEF123_-")
		if len(got) != 1 || got[0].SHA256 == again.SHA256 {
			t.Errorf("after duplicate, thumbnails = %+v; want the first only", got)
		}
	})

	reserve := func(id, user string, expires time.Time) *storage.Pending {
		now := time.UnixMilli(time.Now().UnixMilli())
		return &storage.Pending{Origin: "example.org", MediaID: id, UserID: user, CreatedAt: now, ExpiresAt: expires}
	}
	later := time.Now().Add(time.Hour)

	t.Run("reservation lifecycle", func(t *testing.T) {
		s := open(t)
		if err := s.CreatePending(ctx, reserve("res1", "@a:example.org", later), 5); err != nil {
			t.Fatalf("CreatePending: %v", err)
		}
		p, err := s.Pending(ctx, "example.org", "res1")
		if err != nil || p.UserID != "@a:example.org" || !p.ExpiresAt.Equal(time.UnixMilli(later.UnixMilli())) {
			t.Fatalf("Pending = %+v, %v", p, err)
		}
		if err := s.CreatePending(ctx, reserve("res1", "@b:example.org", later), 5); !errors.Is(err, storage.ErrExists) {
			t.Errorf("second reservation of one ID = %v, want ErrExists", err)
		}
		m := sample()
		m.MediaID, m.UserID = "res1", "@b:example.org"
		if err := s.CompleteUpload(ctx, m, storage.Quota{}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteUpload by another user = %v, want ErrNotFound", err)
		}
		m.UserID = "@a:example.org"
		if err := s.CompleteUpload(ctx, m, storage.Quota{}); err != nil {
			t.Fatalf("CompleteUpload: %v", err)
		}
		if got, err := s.Media(ctx, "example.org", "res1"); err != nil || got.SHA256 != m.SHA256 {
			t.Errorf("Media after completion = %+v, %v", got, err)
		}
		if _, err := s.Pending(ctx, "example.org", "res1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Pending after completion = %v, want ErrNotFound", err)
		}
		if err := s.CompleteUpload(ctx, m, storage.Quota{}); !errors.Is(err, storage.ErrExists) {
			t.Errorf("second CompleteUpload = %v, want ErrExists", err)
		}
		if err := s.CreatePending(ctx, reserve("res1", "@a:example.org", later), 5); !errors.Is(err, storage.ErrExists) {
			t.Errorf("reserving an uploaded ID = %v, want ErrExists", err)
		}
	})

	t.Run("expired reservations", func(t *testing.T) {
		s := open(t)
		past := time.Now().Add(-time.Minute)
		if err := s.CreatePending(ctx, reserve("old", "@a:example.org", past), 5); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Pending(ctx, "example.org", "old"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Pending of an expired reservation = %v, want ErrNotFound", err)
		}
		m := sample()
		m.MediaID, m.UserID = "old", "@a:example.org"
		if err := s.CompleteUpload(ctx, m, storage.Quota{}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("CompleteUpload of an expired reservation = %v, want ErrNotFound", err)
		}
		s.CreatePending(ctx, reserve("fresh", "@a:example.org", later), 5)
		n, err := s.DeleteExpiredPending(ctx, time.Now())
		if err != nil || n != 1 {
			t.Errorf("DeleteExpiredPending = %d, %v; want 1", n, err)
		}
		if _, err := s.Pending(ctx, "example.org", "fresh"); err != nil {
			t.Errorf("an unexpired reservation was swept: %v", err)
		}
	})

	t.Run("pending limit holds under concurrency", func(t *testing.T) {
		s := open(t)
		const limit, tries = 3, 12
		errs := concurrently(tries, func(i int) error {
			return s.CreatePending(ctx, reserve(fmt.Sprintf("p%d", i), "@a:example.org", later), limit)
		})
		if ok := successes(t, errs, storage.ErrLimitExceeded); ok != limit {
			t.Errorf("%d reservations made, want exactly %d", ok, limit)
		}
		// Another user is not affected; expired ones do not count.
		if err := s.CreatePending(ctx, reserve("other", "@b:example.org", later), limit); err != nil {
			t.Errorf("other user: %v", err)
		}
	})

	t.Run("usage and quota", func(t *testing.T) {
		s := open(t)
		media := func(id, user string, size int64) *storage.Media {
			m := sample()
			m.MediaID, m.UserID, m.SizeBytes = id, user, size
			return m
		}
		q := storage.Quota{MaxBytes: 100, MaxFiles: 3}
		for i, size := range []int64{40, 50} {
			if err := s.CreateMedia(ctx, media(fmt.Sprint("q", i), "@a:example.org", size), q); err != nil {
				t.Fatalf("upload %d within quota: %v", i, err)
			}
		}
		if err := s.CreateMedia(ctx, media("q2", "@a:example.org", 11), q); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Errorf("upload over maxBytes = %v, want ErrQuotaExceeded", err)
		}
		if err := s.CreateMedia(ctx, media("q3", "@a:example.org", 10), q); err != nil {
			t.Errorf("upload reaching maxBytes exactly = %v, want nil", err)
		}
		if err := s.CreateMedia(ctx, media("q4", "@a:example.org", 0), q); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Errorf("fourth file = %v, want ErrQuotaExceeded (maxFiles 3)", err)
		}
		u, err := s.Usage(ctx, "@a:example.org")
		if err != nil || u != (storage.Usage{Bytes: 100, Files: 3}) {
			t.Errorf("Usage = %+v, %v; want 100 bytes in 3 files", u, err)
		}
		if u, _ := s.Usage(ctx, "@nobody:example.org"); u != (storage.Usage{}) {
			t.Errorf("Usage of a user without media = %+v", u)
		}
		// The quota applies to completing a reservation too.
		p := &storage.Pending{Origin: "example.org", MediaID: "res", UserID: "@a:example.org", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		s.CreatePending(ctx, p, 0)
		if err := s.CompleteUpload(ctx, media("res", "@a:example.org", 1), storage.Quota{MaxBytes: 100}); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Errorf("CompleteUpload over quota = %v, want ErrQuotaExceeded", err)
		}
		if _, err := s.Pending(ctx, "example.org", "res"); err != nil {
			t.Errorf("a refused completion consumed the reservation: %v", err)
		}
	})

	t.Run("parallel uploads cannot overshoot a quota", func(t *testing.T) {
		s := open(t)
		const n, size = 12, 10
		q := storage.Quota{MaxBytes: 55} // room for 5 of the 12
		errs := concurrently(n, func(i int) error {
			m := sample()
			m.MediaID, m.UserID, m.SizeBytes = fmt.Sprint("race", i), "@racer:example.org", size
			return s.CreateMedia(ctx, m, q)
		})
		ok := successes(t, errs, storage.ErrQuotaExceeded)
		if u, _ := s.Usage(ctx, "@racer:example.org"); ok != 5 || u.Bytes != 50 {
			t.Errorf("%d uploads stored (%d bytes), want exactly 5 (50 bytes)", ok, u.Bytes)
		}
	})

	t.Run("url previews", func(t *testing.T) {
		s := open(t)
		if _, err := s.URLPreview(ctx, "https://example.com/", 1, "en"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("URLPreview before any = %v, want ErrNotFound", err)
		}
		p := &storage.URLPreview{URL: "https://example.com/", Bucket: 1, Lang: "en", Status: 200, Body: `{"og:title":"x"}`,
			CreatedAt: time.UnixMilli(time.Now().UnixMilli())}
		if err := s.CreateURLPreview(ctx, p); err != nil {
			t.Fatal(err)
		}
		failed := *p
		failed.Lang, failed.Status, failed.Errcode, failed.Body = "de", 502, "M_UNKNOWN", `{"errcode":"M_UNKNOWN"}`
		if err := s.CreateURLPreview(ctx, &failed); err != nil {
			t.Fatal(err)
		}
		again := *p
		again.Body = "{}"
		if err := s.CreateURLPreview(ctx, &again); err != nil {
			t.Errorf("caching an existing key = %v, want nil (kept)", err)
		}
		got, err := s.URLPreview(ctx, "https://example.com/", 1, "en")
		if err != nil || *got != *p {
			t.Errorf("URLPreview = %+v, %v; want %+v", got, err, *p)
		}
		got, err = s.URLPreview(ctx, "https://example.com/", 1, "de")
		if err != nil || got.Errcode != "M_UNKNOWN" || got.Status != 502 {
			t.Errorf("cached failure = %+v, %v", got, err)
		}
		if _, err := s.URLPreview(ctx, "https://example.com/", 2, "en"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("another hour = %v, want ErrNotFound", err)
		}
	})
}

// concurrently runs fn(0..n-1) at once and returns their errors in order.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errs
}

// successes counts the nil errors of a race and fails the test on any error
// other than the expected refusal.
func successes(t *testing.T, errs []error, refusal error) int {
	t.Helper()
	n := 0
	for _, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, refusal):
			t.Errorf("error %v, want nil or %v", err, refusal)
		}
	}
	return n
}
