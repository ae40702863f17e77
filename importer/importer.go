// Package importer brings media over from another server: Synapse's media
// store, Dendrite's, or matrix-media-repo's, each a Source reading the other
// server's database and files without writing to them. Run imports every
// item once: a media already here is not imported again (its missing
// thumbnails and its flags are), so a second run changes nothing and a run
// killed half-way is finished by the next. Every blob is hashed on the way
// in; a file that is missing or does not match the source's hash is listed
// in the report, not fatal. It imports storage, mxid and crashpoint.
package importer

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/crashpoint"
	"github.com/mediarepo/mediarepo/storage"
)

// Item is one media of a source.
type Item struct {
	Origin, MediaID          string
	UploadName, ContentType  string
	UserID                   string
	Size                     int64 // as the source records it; -1 unknown
	Created, LastAccess      time.Time
	QuarantinedBy            string // "" unless quarantined there
	Protected, Authenticated bool
	// SHA256 is the source's hex digest of the bytes, "" if it keeps none;
	// the bytes are checked against it.
	SHA256 string
	// Path is the file holding the bytes; Gzipped ones are decompressed.
	Path    string
	Gzipped bool
	// Open, if set, opens the bytes instead of Path.
	Open   func() (io.ReadCloser, error)
	Thumbs []Thumb
	// Skip, if set, says why the item is not media to import (a URL
	// preview's cached image, an ID no server could serve).
	Skip string
}

func (it Item) open() (io.ReadCloser, error) {
	if it.Open != nil {
		return it.Open()
	}
	return os.Open(it.Path)
}

// Thumb is one stored thumbnail of an item.
type Thumb struct {
	Width, Height int
	Method        string // crop or scale
	Animated      bool
	ContentType   string
	Created       time.Time
	Path          string
}

// Source lists the media of another server.
type Source interface {
	// Name says what is imported, for logs and the report.
	Name() string
	// Count is how many items Items yields and their bytes, for progress.
	Count(ctx context.Context) (items, bytes int64, err error)
	// Items calls fn with every item, stopping at fn's first error.
	Items(ctx context.Context, fn func(Item) error) error
	Close() error
}

// Stores are what an import writes.
type Stores struct {
	Media      storage.MediaStore
	Thumbnails storage.ThumbnailStore
	Moderation storage.ModerationStore
	Access     storage.AccessStore
	Blobs      *storage.Datastores
}

// Options control a run.
type Options struct {
	Stores Stores
	// Local are the homeservers served here: their media is local media,
	// any other origin's is cached remote media.
	Local   []string
	Workers int // at least 1
	DryRun  bool
	// Progress is told of every item done; nil tells nobody.
	Progress func(items, bytes int64)
	Log      *logrus.Entry
}

// Report is what a run did.
type Report struct {
	Source     string
	Items      int64 // seen
	Imported   int64 // media rows written (would be, in a dry run)
	Present    int64 // already here
	Bytes      int64 // of the media imported (or to import)
	Thumbnails int64 // thumbnails imported
	Skipped    int64 // not importable (URL preview cache, invalid IDs)
	// Problems name the media that could not be imported and why: a
	// missing or unreadable file, bytes that do not match their hash.
	Problems []string
}

// Run imports every item of src with o.Workers at once.
func Run(ctx context.Context, src Source, o Options) (*Report, error) {
	im := New(src.Name(), o)
	items := make(chan Item)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range max(o.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				if err := im.Import(ctx, it); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	listErr := src.Items(ctx, func(it Item) error {
		select {
		case items <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(items)
	wg.Wait()
	if firstErr != nil {
		return im.Report(), firstErr
	}
	if listErr != nil {
		return im.Report(), fmt.Errorf("list %s: %w", src.Name(), listErr)
	}
	return im.Report(), nil
}

// Importer imports items one at a time, for a source that cannot be listed
// ahead (an archive read as a stream). It is safe for concurrent use.
type Importer struct{ r *run }

// New returns an Importer writing to o's stores; source names it in the
// report.
func New(source string, o Options) *Importer {
	r := &run{o: o, report: &Report{Source: source}, local: map[string]bool{}}
	for _, l := range o.Local {
		r.local[l] = true
	}
	return &Importer{r: r}
}

// Import imports one item. It returns only the errors that end a run (a
// store failing); the item's own problems go to the report.
func (im *Importer) Import(ctx context.Context, it Item) error { return im.r.one(ctx, it) }

// Report is what the Importer did so far. Read it once the imports are done.
func (im *Importer) Report() *Report { return im.r.report }

// run is one Run's state.
type run struct {
	o      Options
	local  map[string]bool
	mu     sync.Mutex // guards report.Problems
	report *Report
}

func (r *run) problem(it Item, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report.Problems = append(r.report.Problems, fmt.Sprintf("mxc://%s/%s: %s", it.Origin, it.MediaID, fmt.Sprintf(format, args...)))
}

// one imports an item: its row and bytes if they are not here yet, then
// its flags and any thumbnail not here yet. A storage failure ends the run;
// a problem of the item's own is reported and the run goes on.
func (r *run) one(ctx context.Context, it Item) error {
	rep := r.report
	atomic.AddInt64(&rep.Items, 1)
	defer func() {
		if r.o.Progress != nil {
			r.o.Progress(1, max(it.Size, 0))
		}
	}()
	if it.Skip != "" {
		atomic.AddInt64(&rep.Skipped, 1)
		return nil
	}
	existing, err := r.o.Stores.Media.Media(ctx, it.Origin, it.MediaID)
	switch {
	case err == nil:
		atomic.AddInt64(&rep.Present, 1)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	case r.o.DryRun:
		if _, err := os.Stat(it.Path); it.Open == nil && err != nil {
			r.problem(it, "%v", err)
			return nil
		}
		atomic.AddInt64(&rep.Imported, 1)
		atomic.AddInt64(&rep.Bytes, max(it.Size, 0))
		return nil
	default:
		existing, err = r.media(ctx, it)
		if err != nil || existing == nil {
			return err
		}
		atomic.AddInt64(&rep.Imported, 1)
		atomic.AddInt64(&rep.Bytes, existing.SizeBytes)
	}
	if r.o.DryRun {
		return nil
	}
	if err := r.flags(ctx, it, existing); err != nil {
		return err
	}
	return r.thumbnails(ctx, it, existing)
}

// media stores the item's bytes and row; nil with no error when the item
// had a problem of its own (reported).
func (r *run) media(ctx context.Context, it Item) (*storage.Media, error) {
	f, err := it.open()
	if err != nil {
		r.problem(it, "%v", err)
		return nil, nil
	}
	defer f.Close()
	var body io.Reader = f
	if it.Gzipped {
		zr, err := gzip.NewReader(f)
		if err != nil {
			r.problem(it, "compressed file does not decompress: %v", err)
			return nil, nil
		}
		body = zr
	}
	role := r.o.Stores.Blobs.Roles().RemoteMedia
	if r.local[it.Origin] {
		role = r.o.Stores.Blobs.Roles().LocalMedia
	}
	staged, err := r.o.Stores.Blobs.Stage(ctx, role, body)
	if err != nil {
		if fatal(ctx, err) {
			return nil, err
		}
		r.problem(it, "cannot be read: %v", err)
		return nil, nil
	}
	defer staged.Abort()
	if it.SHA256 != "" && it.SHA256 != staged.SHA256() {
		r.problem(it, "the file's SHA-256 is %s, the source says %s: not imported", staged.SHA256(), it.SHA256)
		return nil, nil
	}
	if it.Size >= 0 && it.Size != staged.Size() {
		r.problem(it, "the file has %d bytes, the source says %d (imported as the file is)", staged.Size(), it.Size)
	}
	m := &storage.Media{
		Origin: it.Origin, MediaID: it.MediaID, UploadName: it.UploadName, ContentType: it.ContentType,
		UserID: it.UserID, SHA256: staged.SHA256(), SizeBytes: staged.Size(), DatastoreID: role,
		CreatedAt: it.Created, Authenticated: it.Authenticated, QuarantinedBy: it.QuarantinedBy,
	}
	err = r.o.Stores.Media.CreateMedia(ctx, m, storage.Quota{}, staged.Commit)
	crashpoint.Hit("import-media-stored")
	if errors.Is(err, storage.ErrExists) { // another worker, or a purged ID
		atomic.AddInt64(&r.report.Present, 1)
		return nil, nil
	}
	if errors.Is(err, storage.ErrQuarantined) {
		r.problem(it, "its bytes are quarantined here: not imported")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// flags carries the source's quarantine, protection and last access over.
// A homeserver's quarantine covers its own media here; a quarantine of
// cached remote media covers those bytes everywhere, as it did there.
func (r *run) flags(ctx context.Context, it Item, m *storage.Media) error {
	if it.QuarantinedBy != "" {
		scope := ""
		if r.local[it.Origin] {
			scope = it.Origin
		}
		if _, err := r.o.Stores.Moderation.Quarantine(ctx, []string{m.SHA256}, scope, it.QuarantinedBy); err != nil {
			return err
		}
	}
	if it.Protected && !m.Protected {
		if err := r.o.Stores.Moderation.SetProtected(ctx, it.Origin, it.MediaID, true); err != nil {
			return err
		}
	}
	if !it.LastAccess.IsZero() && it.LastAccess.After(m.LastAccess) && r.o.Stores.Access != nil {
		return r.o.Stores.Access.RecordAccess(ctx, map[storage.MediaKey]time.Time{{Origin: it.Origin, MediaID: it.MediaID}: it.LastAccess})
	}
	return nil
}

// thumbnails stores the item's thumbnails that are not here yet. A missing
// thumbnail file is no problem: it is made again when asked for.
func (r *run) thumbnails(ctx context.Context, it Item, m *storage.Media) error {
	if len(it.Thumbs) == 0 {
		return nil
	}
	have, err := r.o.Stores.Thumbnails.Thumbnails(ctx, m.Origin, m.MediaID)
	if err != nil {
		return err
	}
	for _, th := range it.Thumbs {
		if stored(have, th) {
			continue
		}
		if err := r.thumbnail(ctx, m, th); err != nil {
			return err
		}
	}
	return nil
}

// fatal says whether a staging error is this server's (a full or read-only
// datastore, a cancelled run) rather than the source file's.
func fatal(ctx context.Context, err error) bool {
	return errors.Is(err, storage.ErrFull) || errors.Is(err, storage.ErrReadOnly) || errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil
}

func stored(have []storage.Thumbnail, th Thumb) bool {
	for _, h := range have {
		if h.Width == th.Width && h.Height == th.Height && h.Method == th.Method && h.Animated == th.Animated && h.ContentType == th.ContentType {
			return true
		}
	}
	return false
}

func (r *run) thumbnail(ctx context.Context, m *storage.Media, th Thumb) error {
	f, err := os.Open(th.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	role := r.o.Stores.Blobs.Roles().Thumbnails
	staged, err := r.o.Stores.Blobs.Stage(ctx, role, f)
	if err != nil {
		if fatal(ctx, err) {
			return err
		}
		return nil // an unreadable thumbnail is made again when asked for
	}
	defer staged.Abort()
	row := &storage.Thumbnail{
		Origin: m.Origin, MediaID: m.MediaID, Width: th.Width, Height: th.Height, Method: th.Method,
		Animated: th.Animated, ContentType: th.ContentType, SHA256: staged.SHA256(), SizeBytes: staged.Size(),
		DatastoreID: role, CreatedAt: th.Created,
	}
	err = r.o.Stores.Thumbnails.CreateThumbnail(ctx, row, staged.Commit)
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return err
	}
	if err == nil {
		atomic.AddInt64(&r.report.Thumbnails, 1)
	}
	return nil
}
