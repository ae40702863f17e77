package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// RunThumbnailStore checks the ThumbnailStore contract against a fresh store
// from open for each case.
func RunThumbnailStore(t *testing.T, open func(t *testing.T) storage.ThumbnailStore) {
	runCases(t, open, []testCase[storage.ThumbnailStore]{
		{"round trip", thumbnailsRoundTrip},
		{"duplicate is ErrExists", thumbnailDuplicate},
	})
}

func sampleThumbnail(w, h int, method string, animated bool) *storage.Thumbnail {
	return &storage.Thumbnail{
		Origin: "example.org", MediaID: "abcDEF123_-", Width: w, Height: h, Method: method,
		Animated: animated, ContentType: "image/jpeg", SHA256: sampleMedia().SHA256, SizeBytes: 1234,
		DatastoreID: "thumbs", CreatedAt: time.UnixMilli(time.Now().UnixMilli()),
	}
}

func thumbnailsRoundTrip(t *testing.T, s storage.ThumbnailStore) {
	ctx := context.Background()
	if got, err := s.Thumbnails(ctx, "example.org", "abcDEF123_-"); err != nil || len(got) != 0 {
		t.Fatalf("Thumbnails before any = %v, %v; want none, nil", got, err)
	}
	want := []*storage.Thumbnail{
		sampleThumbnail(32, 32, "crop", false), sampleThumbnail(32, 32, "scale", false),
		sampleThumbnail(32, 32, "crop", true), sampleThumbnail(800, 600, "scale", false),
	}
	for _, th := range want {
		if err := s.CreateThumbnail(ctx, th, nil); err != nil {
			t.Fatalf("CreateThumbnail(%+v): %v", th, err)
		}
	}
	other := sampleThumbnail(32, 32, "crop", false)
	other.MediaID = "other"
	s.CreateThumbnail(ctx, other, nil)
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
}

func thumbnailDuplicate(t *testing.T, s storage.ThumbnailStore) {
	ctx := context.Background()
	if err := s.CreateThumbnail(ctx, sampleThumbnail(96, 96, "crop", false), nil); err != nil {
		t.Fatal(err)
	}
	again := sampleThumbnail(96, 96, "crop", false)
	again.SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
	if err := s.CreateThumbnail(ctx, again, nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateThumbnail = %v, want ErrExists", err)
	}
	got, _ := s.Thumbnails(ctx, "example.org", "abcDEF123_-")
	if len(got) != 1 || got[0].SHA256 == again.SHA256 {
		t.Errorf("after duplicate, thumbnails = %+v; want the first only", got)
	}
}
