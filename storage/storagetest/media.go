package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mediarepo/mediarepo/storage"
)

// RunMediaStore checks the MediaStore contract against a fresh store from
// open for each case.
func RunMediaStore(t *testing.T, open func(t *testing.T) storage.MediaStore) {
	runCases(t, open, []testCase[storage.MediaStore]{
		{"round trip", mediaRoundTrip},
		{"empty optional fields", mediaEmptyFields},
		{"not found", mediaNotFound},
		{"origin is part of the key", mediaOriginInKey},
		{"duplicate is ErrExists and changes nothing", mediaDuplicate},
		{"concurrent creates of one key: exactly one wins", mediaConcurrentCreate},
		{"large size survives", mediaLargeSize},
		{"usage and quota", mediaUsageAndQuota},
		{"parallel uploads cannot overshoot a quota", mediaQuotaRace},
		{"publish runs before the row is visible, and a failure writes nothing", mediaPublish},
		{"a refused row never publishes", mediaRefusedNeverPublishes},
		{"media without an uploader counts for nobody", mediaWithoutUploader},
	})
}

func mediaRoundTrip(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	want := sampleMedia()
	if err := s.CreateMedia(ctx, want, storage.Quota{}, nil); err != nil {
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
}

func mediaEmptyFields(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	want := sampleMedia()
	want.UploadName, want.UserID, want.Authenticated = "", "", false
	if err := s.CreateMedia(ctx, want, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Media(ctx, want.Origin, want.MediaID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UploadName != "" || got.UserID != "" || got.Authenticated {
		t.Errorf("Media = %+v, want empty name and user, not authenticated", *got)
	}
}

func mediaNotFound(t *testing.T, s storage.MediaStore) {
	m, err := s.Media(context.Background(), "example.org", "missing")
	if !errors.Is(err, storage.ErrNotFound) || m != nil {
		t.Errorf("Media = %v, %v; want nil, ErrNotFound", m, err)
	}
}

func mediaOriginInKey(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	a := sampleMedia()
	b := sampleMedia()
	b.Origin, b.ContentType = "other.org", "text/plain"
	for _, m := range []*storage.Media{a, b} {
		if err := s.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
			t.Fatalf("CreateMedia(%s): %v", m.Origin, err)
		}
	}
	got, err := s.Media(ctx, "other.org", b.MediaID)
	if err != nil || got.ContentType != "text/plain" {
		t.Errorf("Media(other.org) = %+v, %v; want text/plain", got, err)
	}
}

func mediaDuplicate(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	first := sampleMedia()
	if err := s.CreateMedia(ctx, first, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	second := sampleMedia()
	second.ContentType = "text/html"
	if err := s.CreateMedia(ctx, second, storage.Quota{}, nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateMedia = %v, want ErrExists", err)
	}
	got, _ := s.Media(ctx, first.Origin, first.MediaID)
	if got == nil || got.ContentType != first.ContentType {
		t.Errorf("after duplicate, Media = %+v; want the first row", got)
	}
}

func mediaConcurrentCreate(t *testing.T, s storage.MediaStore) {
	const n = 8
	errs := concurrently(n, func(i int) error {
		m := sampleMedia()
		m.UploadName = fmt.Sprint(i)
		return s.CreateMedia(context.Background(), m, storage.Quota{}, nil)
	})
	if wins := successes(t, errs, storage.ErrExists); wins != 1 {
		t.Errorf("%d creates succeeded, want 1", wins)
	}
}

func mediaLargeSize(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	m := sampleMedia()
	m.SizeBytes = 5 << 40
	if err := s.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Media(ctx, m.Origin, m.MediaID)
	if err != nil || got.SizeBytes != 5<<40 {
		t.Errorf("SizeBytes = %v, %v; want %d", got, err, int64(5<<40))
	}
}

// mediaOf is sampleMedia with another ID, uploader and size.
func mediaOf(id, user string, size int64) *storage.Media {
	m := sampleMedia()
	m.MediaID, m.UserID, m.SizeBytes = id, user, size
	return m
}

func mediaUsageAndQuota(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	q := storage.Quota{MaxBytes: 100, MaxFiles: 3}
	for i, size := range []int64{40, 50} {
		if err := s.CreateMedia(ctx, mediaOf(fmt.Sprint("q", i), "@a:example.org", size), q, nil); err != nil {
			t.Fatalf("upload %d within quota: %v", i, err)
		}
	}
	if err := s.CreateMedia(ctx, mediaOf("q2", "@a:example.org", 11), q, nil); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("upload over maxBytes = %v, want ErrQuotaExceeded", err)
	}
	if err := s.CreateMedia(ctx, mediaOf("q3", "@a:example.org", 10), q, nil); err != nil {
		t.Errorf("upload reaching maxBytes exactly = %v, want nil", err)
	}
	if err := s.CreateMedia(ctx, mediaOf("q4", "@a:example.org", 0), q, nil); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("fourth file = %v, want ErrQuotaExceeded (maxFiles 3)", err)
	}
	u, err := s.Usage(ctx, "@a:example.org")
	if err != nil || u != (storage.Usage{Bytes: 100, Files: 3}) {
		t.Errorf("Usage = %+v, %v; want 100 bytes in 3 files", u, err)
	}
	if u, _ := s.Usage(ctx, "@nobody:example.org"); u != (storage.Usage{}) {
		t.Errorf("Usage of a user without media = %+v", u)
	}
}

func mediaQuotaRace(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	const n, size = 12, 10
	q := storage.Quota{MaxBytes: 55} // room for 5 of the 12
	errs := concurrently(n, func(i int) error {
		return s.CreateMedia(ctx, mediaOf(fmt.Sprint("race", i), "@racer:example.org", size), q, nil)
	})
	ok := successes(t, errs, storage.ErrQuotaExceeded)
	if u, _ := s.Usage(ctx, "@racer:example.org"); ok != 5 || u.Bytes != 50 {
		t.Errorf("%d uploads stored (%d bytes), want exactly 5 (50 bytes)", ok, u.Bytes)
	}
}

func mediaPublish(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	published := 0
	ok := func(context.Context) error { published++; return nil }
	if err := s.CreateMedia(ctx, mediaOf("p1", "@a:example.org", 10), storage.Quota{}, ok); err != nil || published != 1 {
		t.Fatalf("CreateMedia = %v, published %d times; want once", err, published)
	}
	boom := errors.New("disk gone")
	err := s.CreateMedia(ctx, mediaOf("p2", "@a:example.org", 10), storage.Quota{}, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("CreateMedia with a failing publish = %v, want it", err)
	}
	if _, err := s.Media(ctx, "example.org", "p2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a row whose blob failed to publish is visible: %v", err)
	}
	if u, _ := s.Usage(ctx, "@a:example.org"); u != (storage.Usage{Bytes: 10, Files: 1}) {
		t.Errorf("Usage = %+v, want only the published media counted", u)
	}
}

func mediaRefusedNeverPublishes(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	if err := s.CreateMedia(ctx, mediaOf("r1", "@a:example.org", 90), storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	published := false
	publish := func(context.Context) error { published = true; return nil }
	err := s.CreateMedia(ctx, mediaOf("r2", "@a:example.org", 20), storage.Quota{MaxBytes: 100}, publish)
	if !errors.Is(err, storage.ErrQuotaExceeded) || published {
		t.Errorf("over quota: %v, published %v; want ErrQuotaExceeded without publishing", err, published)
	}
	err = s.CreateMedia(ctx, mediaOf("r1", "@a:example.org", 1), storage.Quota{}, publish)
	if !errors.Is(err, storage.ErrExists) || published {
		t.Errorf("taken ID: %v, published %v; want ErrExists without publishing", err, published)
	}
}

func mediaWithoutUploader(t *testing.T, s storage.MediaStore) {
	ctx := context.Background()
	if err := s.CreateMedia(ctx, mediaOf("remote1", "", 1000), storage.Quota{MaxBytes: 1}, nil); err != nil {
		t.Fatalf("media without an uploader under a quota: %v", err)
	}
	if u, _ := s.Usage(ctx, ""); u != (storage.Usage{}) {
		t.Errorf("Usage of nobody = %+v, want nothing", u)
	}
}
