package storagetest

import (
	"context"
	"testing"

	"github.com/mediarepo/mediarepo/storage"
)

// retentionStores is one store seen as the interfaces the retention cases use.
type retentionStores struct {
	ret    storage.RetentionStore
	media  storage.MediaStore
	thumbs storage.ThumbnailStore
}

// RunRetentionStore checks the RetentionStore contract; open returns one
// store as the three interfaces.
func RunRetentionStore(t *testing.T, open func(t *testing.T) (storage.RetentionStore, storage.MediaStore, storage.ThumbnailStore)) {
	openAll := func(t *testing.T) retentionStores {
		r, m, th := open(t)
		return retentionStores{r, m, th}
	}
	runCases(t, openAll, []testCase[retentionStores]{
		{"blob references by media and thumbnails, per datastore", retentionBlobReferenced},
	})
}

func retentionBlobReferenced(t *testing.T, s retentionStores) {
	ctx := context.Background()
	m := sampleMedia() // in datastore "local"
	if err := s.media.CreateMedia(ctx, m, storage.Quota{}, nil); err != nil {
		t.Fatal(err)
	}
	th := sampleThumbnail(32, 32, "crop", false) // in datastore "thumbs"
	th.SHA256 = "1111111111111111111111111111111111111111111111111111111111111111"
	if err := s.thumbs.CreateThumbnail(ctx, th, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		datastore, sha string
		want           bool
	}{
		{"local", m.SHA256, true},
		{"thumbs", th.SHA256, true},
		{"thumbs", m.SHA256, false}, // the same bytes elsewhere are another blob
		{"local", th.SHA256, false},
		{"local", "2222222222222222222222222222222222222222222222222222222222222222", false},
	} {
		if got, err := s.ret.BlobReferenced(ctx, c.datastore, c.sha); err != nil || got != c.want {
			t.Errorf("BlobReferenced(%s, %.8s) = %v, %v; want %v", c.datastore, c.sha, got, err, c.want)
		}
	}
}
