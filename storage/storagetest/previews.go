package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// RunPreviewStore checks the PreviewStore contract against a fresh store from
// open for each case.
func RunPreviewStore(t *testing.T, open func(t *testing.T) storage.PreviewStore) {
	runCases(t, open, []testCase[storage.PreviewStore]{
		{"answers and failures by key", previewsByKey},
		{"homeserver is part of the key", previewsByServer},
		{"old answers are deleted", previewsExpire},
	})
}

func samplePreview() *storage.URLPreview {
	return &storage.URLPreview{ServerName: "example.org", URL: "https://example.com/", Bucket: 1, Lang: "en", Status: 200,
		Body: `{"og:title":"x"}`, CreatedAt: time.UnixMilli(time.Now().UnixMilli())}
}

func previewsByKey(t *testing.T, s storage.PreviewStore) {
	ctx := context.Background()
	if _, err := s.URLPreview(ctx, "example.org", "https://example.com/", 1, "en"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("URLPreview before any = %v, want ErrNotFound", err)
	}
	p := samplePreview()
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
	got, err := s.URLPreview(ctx, "example.org", "https://example.com/", 1, "en")
	if err != nil || *got != *p {
		t.Errorf("URLPreview = %+v, %v; want %+v", got, err, *p)
	}
	got, err = s.URLPreview(ctx, "example.org", "https://example.com/", 1, "de")
	if err != nil || got.Errcode != "M_UNKNOWN" || got.Status != 502 {
		t.Errorf("cached failure = %+v, %v", got, err)
	}
	if _, err := s.URLPreview(ctx, "example.org", "https://example.com/", 2, "en"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another hour = %v, want ErrNotFound", err)
	}
}

func previewsByServer(t *testing.T, s storage.PreviewStore) {
	ctx := context.Background()
	if err := s.CreateURLPreview(ctx, samplePreview()); err != nil {
		t.Fatal(err)
	}
	if p, err := s.URLPreview(ctx, "other.example", "https://example.com/", 1, "en"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another homeserver sees %+v, %v; want ErrNotFound", p, err)
	}
	other := samplePreview()
	other.ServerName, other.Body = "other.example", `{"og:title":"y"}`
	if err := s.CreateURLPreview(ctx, other); err != nil {
		t.Fatal(err)
	}
	if p, err := s.URLPreview(ctx, "other.example", "https://example.com/", 1, "en"); err != nil || p.Body != other.Body {
		t.Errorf("other homeserver's answer = %+v, %v", p, err)
	}
}

func previewsExpire(t *testing.T, s storage.PreviewStore) {
	ctx := context.Background()
	old := samplePreview()
	old.CreatedAt = time.UnixMilli(time.Now().Add(-48 * time.Hour).UnixMilli())
	fresh := samplePreview()
	fresh.Bucket = 2
	for _, p := range []*storage.URLPreview{old, fresh} {
		if err := s.CreateURLPreview(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteURLPreviews(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("DeleteURLPreviews = %d, %v; want 1", n, err)
	}
	if _, err := s.URLPreview(ctx, "example.org", old.URL, 1, "en"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old answer = %v, want deleted", err)
	}
	if _, err := s.URLPreview(ctx, "example.org", fresh.URL, 2, "en"); err != nil {
		t.Errorf("fresh answer = %v, want kept", err)
	}
}
