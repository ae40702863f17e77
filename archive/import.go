package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/mxid"
)

// Import brings an archive's parts in, in any order: parts read before
// the one with the manifest wait (as files) until it comes, as
// matrix-media-repo does. Each media is imported once, under its own
// origin and ID; media already here is kept as it is. Not safe for
// concurrent use.
type Import struct {
	im      *importer.Importer
	man     *Manifest
	byFile  map[string]keyed
	done    map[string]bool // file names imported or skipped
	waiting []string        // parts read before the manifest
}

type keyed struct {
	key string // the manifest's key, which must be the record's mxc:// URI
	rec *Record
}

// NewImport starts an import writing through o.
func NewImport(o importer.Options) *Import {
	return &Import{im: importer.New("archive", o), done: map[string]bool{}}
}

// Part reads the part at path, which must stay until the import is done
// if it comes before the manifest.
func (i *Import) Part(ctx context.Context, path string) error {
	if i.man == nil {
		man, err := readManifest(path)
		if err != nil {
			return err
		}
		if man == nil {
			i.waiting = append(i.waiting, path)
			return nil
		}
		i.man = man
		i.byFile = make(map[string]keyed, len(man.Media))
		for key, rec := range man.Media {
			i.byFile[rec.FileName] = keyed{key, rec}
		}
		waiting := i.waiting
		i.waiting = nil
		for _, p := range waiting {
			if err := i.read(ctx, p); err != nil {
				return err
			}
		}
	}
	return i.read(ctx, path)
}

// Entity is the manifest's entity, "" before the manifest came.
func (i *Import) Entity() string {
	if i.man == nil {
		return ""
	}
	return i.man.Entity()
}

// Missing is how many media of the manifest have not come yet, -1 before
// the manifest came.
func (i *Import) Missing() int {
	if i.man == nil {
		return -1
	}
	return len(i.man.Media) - len(i.done)
}

// Report is what was imported so far.
func (i *Import) Report() *importer.Report { return i.im.Report() }

func readManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return FindManifest(f)
}

func (i *Import) read(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ReadPart(f, func(name string, _ int64, body io.Reader) error {
		k, ok := i.byFile[name]
		if !ok || i.done[name] {
			return nil
		}
		i.done[name] = true
		return i.im.Import(ctx, item(k, body))
	})
}

// item is the importer's view of a record, skipped where its key is not
// its own URI or its uploader is of another server (as in
// matrix-media-repo: an archive cannot give one server's media to
// another's user).
func item(k keyed, body io.Reader) importer.Item {
	r := k.rec
	it := importer.Item{
		Origin: r.Origin, MediaID: r.MediaID, UploadName: r.Name, ContentType: r.ContentType, Size: r.SizeBytes,
		Created: time.UnixMilli(r.CreatedTS), SHA256: r.SHA256,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(body), nil },
	}
	if it.ContentType == "" {
		it.ContentType = "application/octet-stream"
	}
	if mxid.ValidUserID(r.Uploader) {
		it.UserID = r.Uploader
		if mxid.UserServer(r.Uploader) != r.Origin {
			it.Skip = fmt.Sprintf("uploaded by %s, of another server", r.Uploader)
		}
	}
	switch {
	case k.key != r.MXC():
		it.Skip = fmt.Sprintf("listed as %s in the manifest", k.key)
	case !mxid.ValidServerName(r.Origin) || !mxid.ValidMediaID(r.MediaID):
		it.Skip = "an invalid origin or media ID"
	}
	return it
}
