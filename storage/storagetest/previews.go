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
	})
}

func previewsByKey(t *testing.T, s storage.PreviewStore) {
	ctx := context.Background()
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
}
