package archive

import (
	"context"
	"fmt"

	"github.com/mediarepo/mediarepo/storage"
)

// Entity is what an export holds: one user's uploads (of any origin) or
// one server's media. Exactly one is set.
type Entity struct {
	UserID, Server string
}

func (e Entity) String() string {
	if e.UserID != "" {
		return e.UserID
	}
	return e.Server
}

// Source is what an export reads.
type Source struct {
	Catalog storage.CatalogStore
	Blobs   *storage.Datastores
}

// exportPage is how many rows an export reads at once.
const exportPage = 500

// Write archives e's media into w, quarantined media left out, and reports
// progress (media done of total) after each; the caller closes w. A blob
// that cannot be read fails the export: an archive must not miss media
// silently.
func Write(ctx context.Context, src Source, e Entity, w *Writer, progress func(done, total int64)) error {
	f := storage.MediaFilter{UserID: e.UserID, NotQuarantined: true, Order: storage.ByCreated, Limit: exportPage}
	if e.UserID == "" {
		f.Origins = []string{e.Server}
	}
	var done int64
	for {
		page, total, err := src.Catalog.FindMedia(ctx, f)
		if err != nil {
			return err
		}
		for _, m := range page {
			if err := add(ctx, src.Blobs, w, &m); err != nil {
				return err
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
		if len(page) < exportPage {
			return nil
		}
		f.Offset += len(page)
	}
}

func add(ctx context.Context, blobs *storage.Datastores, w *Writer, m *storage.Media) error {
	body, err := blobs.Open(ctx, m.DatastoreID, m.SHA256)
	if err != nil {
		return fmt.Errorf("the bytes of mxc://%s/%s: %w", m.Origin, m.MediaID, err)
	}
	defer body.Close()
	return w.Add(Record{
		Name: m.UploadName, SizeBytes: m.SizeBytes, ContentType: m.ContentType, Origin: m.Origin, MediaID: m.MediaID,
		CreatedTS: m.CreatedAt.UnixMilli(), Uploader: m.UserID,
	}, body)
}
