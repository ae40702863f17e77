package media_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// countingAccess counts the writes of last accesses.
type countingAccess struct {
	storage.AccessStore
	writes atomic.Int32
}

func (c *countingAccess) RecordAccess(ctx context.Context, at map[storage.MediaKey]time.Time) error {
	c.writes.Add(1)
	return c.AccessStore.RecordAccess(ctx, at)
}

// Downloads record their access in memory; one write carries them all, at
// the latest when the service closes.
func TestAccessesWrittenInBatches(t *testing.T) {
	meta := storagetest.OpenSQLite(t)
	blobs := storagetest.OpenDisk(t)
	stores, err := storage.NewDatastores(map[string]storage.BlobStore{"d": blobs}, storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	access := &countingAccess{AccessStore: meta}
	svc, err := media.New(media.Options{
		Config: media.Config{Uploads: config.Default().Uploads}, Media: meta, Reservations: meta, Blobs: stores,
		Access: access, Log: logrus.NewEntry(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ms []*storage.Media
	for _, content := range []string{"one", "two", "three"} {
		m, err := svc.Upload(ctx, media.Upload{Origin: "example.org", UserID: "@a:example.org", ContentType: "text/plain", Body: strings.NewReader(content), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	before := time.Now()
	for range 100 {
		for _, m := range ms {
			svc.Accessed(m)
		}
	}
	if n := access.writes.Load(); n != 0 {
		t.Errorf("%d writes during 300 downloads, want none before the flush", n)
	}
	svc.Close() // flushes
	if n := access.writes.Load(); n != 1 {
		t.Errorf("%d writes at close, want one for all", n)
	}
	for _, m := range ms {
		got, err := meta.Media(ctx, m.Origin, m.MediaID)
		if err != nil || got.LastAccess.Before(before.Truncate(time.Millisecond)) {
			t.Errorf("%s last access = %v, %v; want it recorded", m.MediaID, got.LastAccess, err)
		}
	}
}
