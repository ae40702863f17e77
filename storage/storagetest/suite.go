package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// RunMetadataStores runs every metadata suite against fresh stores from open,
// for a store that implements every metadata interface (the sqlstore engine).
func RunMetadataStores[S interface {
	storage.MediaStore
	storage.ThumbnailStore
	storage.ReservationStore
	storage.PreviewStore
	storage.RetentionStore
	storage.CatalogStore
	storage.ModerationStore
	storage.PurgeStore
	storage.TaskStore
	storage.LeaseStore
	storage.AccessStore
	storage.ExportStore
	storage.TransferStore
	storage.TotalsStore
}](t *testing.T, open func(t *testing.T) S) {
	t.Run("media", func(t *testing.T) {
		RunMediaStore(t, func(t *testing.T) storage.MediaStore { return open(t) })
	})
	t.Run("thumbnails", func(t *testing.T) {
		RunThumbnailStore(t, func(t *testing.T) storage.ThumbnailStore { return open(t) })
	})
	t.Run("reservations", func(t *testing.T) {
		RunReservationStore(t, func(t *testing.T) (storage.ReservationStore, storage.MediaStore) {
			s := open(t)
			return s, s
		})
	})
	t.Run("previews", func(t *testing.T) {
		RunPreviewStore(t, func(t *testing.T) storage.PreviewStore { return open(t) })
	})
	t.Run("admin", func(t *testing.T) {
		RunAdminStores(t, func(t *testing.T) AdminStores {
			s := open(t)
			return AdminStores{Media: s, Thumbs: s, Reservations: s, Catalog: s, Moderation: s, Purge: s, Tasks: s, Leases: s, Access: s, Exports: s, Transfer: s, Totals: s}
		})
	})
	t.Run("retention", func(t *testing.T) {
		RunRetentionStore(t, func(t *testing.T) (storage.RetentionStore, storage.MediaStore, storage.ThumbnailStore) {
			s := open(t)
			return s, s, s
		})
	})
}

// testCase is one named case of a suite, run on a fresh store.
type testCase[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runCases runs each case as a subtest on a store from open.
func runCases[S any](t *testing.T, open func(t *testing.T) S, cases []testCase[S]) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

// sampleMedia is a media row with every field set, in millisecond precision
// as the stores keep times.
func sampleMedia() *storage.Media {
	return &storage.Media{
		Origin: "example.org", MediaID: "abcDEF123_-", UploadName: "cat 🐱; \"x\".png",
		ContentType: "img/png", UserID: "@alice:example.org",
		SHA256:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		SizeBytes: 4, DatastoreID: "local",
		CreatedAt: time.UnixMilli(time.Now().UnixMilli()), Authenticated: true,
	}
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
