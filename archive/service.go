package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/tasks"
)

// Errors of the Service, for the edge to answer.
var (
	// ErrNoDatastore: no datastore takes archives (forKinds).
	ErrNoDatastore = errors.New("no datastore takes archives: add archives to a datastore's forKinds")
	// ErrPartTooLarge: an import part over the size a part can have.
	ErrPartTooLarge = errors.New("the part is larger than an export part can be")
	// ErrBusy: too many imports are waiting for parts.
	ErrBusy = errors.New("too many imports are in progress; close one first")
)

// Task names, matrix-media-repo's.
const (
	TaskExport = "export_data"
	TaskImport = "import_data"
)

const (
	// maxImports bounds the imports waiting for parts at once.
	maxImports = 8
	// importIdle closes an import no part came to for this long.
	importIdle = time.Hour
	// progressEvery spaces an export's progress log lines.
	progressEvery = 10 * time.Second
)

// Stores are what exports and imports use; one engine may be all.
type Stores struct {
	Catalog storage.CatalogStore
	Exports storage.ExportStore
	Import  importer.Stores
}

// Options are the Service's dependencies.
type Options struct {
	Live   *config.Live
	Stores Stores
	Blobs  *storage.Datastores
	// Tasks runs exports and imports.
	Tasks *tasks.Runner
	// Remover deletes the blobs of deleted exports.
	Remover *retention.Remover
	// Bus tells every process of imported media (they may remember the
	// IDs as missing); nil tells nobody.
	Bus *bus.Bus
	// Datastore is the datastore taking archives; "" refuses exports.
	Datastore string
	// SpoolDir holds import parts until they are read; "" is the system's.
	SpoolDir string
	Log      *logrus.Entry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Service runs exports and imports as tasks. An import lives in the
// process that started it: its parts must be sent there. What an export
// interrupted by a stopped process wrote is deleted when its task is
// marked failed.
type Service struct {
	o Options

	mu      sync.Mutex
	imports map[string]*session
}

// New returns the Service.
func New(o Options) (*Service, error) {
	if o.Live == nil || o.Stores.Catalog == nil || o.Stores.Exports == nil || o.Tasks == nil ||
		o.Blobs == nil || o.Remover == nil || o.Log == nil {
		return nil, errors.New("archive.New: Live, Stores, Blobs, Tasks, Remover and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, imports: map[string]*session{}}
	o.Tasks.OnInterrupted(TaskExport, func(ctx context.Context, t storage.Task) error {
		return s.deleteExport(ctx, exportIDOf(t))
	})
	return s, nil
}

func newID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b) + strconv.FormatInt(time.Now().UnixMilli(), 10)
}

// StartExport starts exporting e's media and returns the export's ID (the
// secret that reads it) and its task's.
func (s *Service) StartExport(ctx context.Context, e Entity, includeS3URLs bool) (string, int64, error) {
	if s.o.Datastore == "" {
		return "", 0, ErrNoDatastore
	}
	id := newID()
	params := map[string]any{"export_id": id, "include_s3_urls": includeS3URLs}
	if e.UserID != "" {
		params["user_id"] = e.UserID
	} else {
		params["server_name"] = e.Server
	}
	created := s.o.Now()
	task, err := s.o.Tasks.Start(ctx, TaskExport, params, func(ctx context.Context, task int64) error {
		if err := s.o.Stores.Exports.CreateExport(ctx, &storage.Export{ID: id, Entity: e.String(), TaskID: task, Created: created}); err != nil {
			return err
		}
		err := s.export(ctx, id, e)
		if err != nil {
			s.deleteExport(context.WithoutCancel(ctx), id) // no half archive is left to download
		}
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return id, task, nil
}

// export writes export id's parts to the archives datastore.
func (s *Service) export(ctx context.Context, id string, e Entity) error {
	log := s.o.Log.WithFields(logrus.Fields{"export_id_prefix": id[:8], "entity": e.String()})
	log.Info("export starting")
	sink := func(ctx context.Context, index int, name string, r io.Reader) error {
		staged, err := s.o.Blobs.Stage(ctx, s.o.Datastore, r)
		if err != nil {
			return err
		}
		defer staged.Abort()
		part := storage.ExportPart{Index: index, Name: name, Size: staged.Size(), SHA256: staged.SHA256(), DatastoreID: s.o.Datastore}
		return s.o.Stores.Exports.AddExportPart(ctx, id, part, staged.Commit)
	}
	w := NewWriter(ctx, e.String(), s.o.Now(), s.o.Live.Get().Archiving.TargetBytesPerPart, sink)
	last := time.Now()
	err := Write(ctx, Source{Catalog: s.o.Stores.Catalog, Blobs: s.o.Blobs}, e, w, func(done, total int64) {
		if time.Since(last) >= progressEvery {
			last = time.Now()
			log.WithFields(logrus.Fields{"done": done, "of": total}).Info("exporting")
		}
	})
	if err != nil {
		w.Abort()
		log.WithError(err).Warn("export failed")
		return err
	}
	if err := w.Close(); err != nil {
		log.WithError(err).Warn("export failed")
		return err
	}
	log.Info("export finished")
	return nil
}

// Export returns an export and its parts so far; an unknown one wraps
// storage.ErrNotFound.
func (s *Service) Export(ctx context.Context, id string) (*storage.Export, error) {
	return s.o.Stores.Exports.Export(ctx, id)
}

// OpenPart opens part index of export id; the caller closes it.
func (s *Service) OpenPart(ctx context.Context, id string, index int) (storage.ExportPart, io.ReadSeekCloser, error) {
	e, err := s.o.Stores.Exports.Export(ctx, id)
	if err != nil {
		return storage.ExportPart{}, nil, err
	}
	for _, p := range e.Parts {
		if p.Index == index {
			body, err := s.o.Blobs.Open(ctx, p.DatastoreID, p.SHA256)
			return p, body, err
		}
	}
	return storage.ExportPart{}, nil, fmt.Errorf("export part %d: %w", index, storage.ErrNotFound)
}

// DeleteExport stops export id if it runs here and deletes it with its
// parts; an unknown export is no error.
func (s *Service) DeleteExport(ctx context.Context, id string) error {
	if e, err := s.o.Stores.Exports.Export(ctx, id); err == nil {
		s.o.Tasks.Cancel(e.TaskID) // its goroutine deletes what it wrote too
	}
	return s.deleteExport(ctx, id)
}

func (s *Service) deleteExport(ctx context.Context, id string) error {
	refs, err := s.o.Stores.Exports.DeleteExport(ctx, id)
	if err != nil {
		return err
	}
	s.o.Remover.DeleteBlobs(ctx, refs)
	return nil
}

// exportIDOf is the export_id of a task's params.
func exportIDOf(t storage.Task) string {
	var p struct {
		ExportID string `json:"export_id"`
	}
	json.Unmarshal([]byte(t.Params), &p)
	return p.ExportID
}

// maxPartBytes is the most an import part may hold: the target size, plus
// the media that crossed it, plus the manifest's slack.
func (s *Service) maxPartBytes() int64 {
	c := s.o.Live.Get()
	biggest := c.Uploads.MaxBytes
	if biggest <= 0 {
		biggest = c.Archiving.TargetBytesPerPart
	}
	return c.Archiving.TargetBytesPerPart + biggest + 64<<20
}

// spool writes body to a new file of dir, refusing more than limit bytes.
func spool(dir string, body io.Reader, limit int64) (string, error) {
	f, err := os.CreateTemp(dir, "part-*.tgz")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	if err == nil && n > limit {
		err = ErrPartTooLarge
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// spoolDir makes the directory of one import's parts.
func (s *Service) spoolDir() (string, error) {
	dir := s.o.SpoolDir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
	}
	return os.MkdirTemp(dir, "mediarepo-import-")
}
