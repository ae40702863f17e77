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
	// taskLease is how long a running task's lease lasts unrenewed: a task
	// of a process that stopped is marked failed once it runs out.
	taskLease = 2 * time.Minute
	// progressEvery spaces an export's progress log lines.
	progressEvery = 10 * time.Second
)

// Stores are what exports and imports use; one engine may be all.
type Stores struct {
	Catalog storage.CatalogStore
	Exports storage.ExportStore
	Tasks   storage.TaskStore
	Leases  storage.LeaseStore
	Import  importer.Stores
}

// Options are the Service's dependencies.
type Options struct {
	Live   *config.Live
	Stores Stores
	Blobs  *storage.Datastores
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

// Service runs exports and imports as tasks, each in a goroutine it owns
// until Close. A task whose process stopped is marked failed by the others
// (or by this one's next start) once its lease runs out. An import lives
// in the process that started it: its parts must be sent there.
type Service struct {
	o      Options
	holder string
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	imports map[string]*session
	exports map[string]runningExport // by export ID
}

type runningExport struct {
	task   int64
	cancel context.CancelFunc
}

// New returns the Service and starts its sweep of interrupted tasks.
func New(o Options) (*Service, error) {
	if o.Live == nil || o.Stores.Catalog == nil || o.Stores.Exports == nil || o.Stores.Tasks == nil || o.Stores.Leases == nil ||
		o.Blobs == nil || o.Remover == nil || o.Log == nil {
		return nil, errors.New("archive.New: Live, Stores, Blobs, Remover and Log are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{o: o, holder: storage.LeaseHolder(), ctx: ctx, stop: stop, imports: map[string]*session{}, exports: map[string]runningExport{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweepInterrupted()
	}()
	return s, nil
}

// Close stops every export and import (their tasks are marked failed) and
// waits for them.
func (s *Service) Close() error {
	s.stop()
	s.wg.Wait()
	return nil
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
	task, err := s.startTask(ctx, TaskExport, params)
	if err != nil {
		return "", 0, err
	}
	if err := s.o.Stores.Exports.CreateExport(ctx, &storage.Export{ID: id, Entity: e.String(), TaskID: task, Created: s.o.Now()}); err != nil {
		s.finishTask(task, err)
		return "", 0, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.exports[id] = runningExport{task, cancel}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		err := s.export(ctx, id, e)
		s.mu.Lock()
		delete(s.exports, id)
		s.mu.Unlock()
		if err != nil {
			s.deleteExport(context.WithoutCancel(ctx), id) // no half archive is left to download
		}
		s.finishTask(task, err)
	}()
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

// DeleteExport stops export id if it runs and deletes it with its parts;
// an unknown export is no error.
func (s *Service) DeleteExport(ctx context.Context, id string) error {
	s.mu.Lock()
	run, ok := s.exports[id]
	s.mu.Unlock()
	if ok {
		run.cancel() // its goroutine deletes what it wrote
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

// startTask records a running task and takes its lease.
func (s *Service) startTask(ctx context.Context, name string, params map[string]any) (int64, error) {
	p, _ := json.Marshal(params)
	t := &storage.Task{Name: name, Params: string(p), Start: s.o.Now()}
	if err := s.o.Stores.Tasks.CreateTask(ctx, t); err != nil {
		return 0, err
	}
	if _, err := s.o.Stores.Leases.AcquireLease(ctx, taskLeaseName(t.ID), s.holder, s.o.Now(), taskLease); err != nil {
		s.finishTask(t.ID, err)
		return 0, err
	}
	return t.ID, nil
}

func taskLeaseName(id int64) string { return "task:" + strconv.FormatInt(id, 10) }

// finishTask records the end of a task, failed if err is not nil.
func (s *Service) finishTask(id int64, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
		if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
			msg = "interrupted: the server stopped"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.o.Stores.Tasks.FinishTask(ctx, id, s.o.Now(), msg); err != nil {
		s.o.Log.WithError(err).WithField("task_id", id).Warn("task end not recorded; other processes will mark it failed")
		return
	}
	s.o.Stores.Leases.ReleaseLease(ctx, taskLeaseName(id), s.holder)
}

// sweepInterrupted renews the leases of this process's running tasks and
// marks failed the tasks whose process stopped (their lease ran out),
// deleting what an interrupted export wrote, until Close.
func (s *Service) sweepInterrupted() {
	t := time.NewTicker(taskLease / 4)
	defer t.Stop()
	for {
		s.renewLeases()
		s.reapInterrupted()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// running lists the tasks this process runs.
func (s *Service) running() map[int64]bool {
	out := map[int64]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.imports {
		out[sess.task] = true
	}
	for _, e := range s.exports {
		out[e.task] = true
	}
	return out
}

func (s *Service) renewLeases() {
	for id := range s.running() {
		s.o.Stores.Leases.AcquireLease(s.ctx, taskLeaseName(id), s.holder, s.o.Now(), taskLease)
	}
}

func (s *Service) reapInterrupted() {
	ctx := s.ctx
	tasks, err := s.o.Stores.Tasks.Tasks(ctx, true)
	if err != nil {
		return
	}
	now := s.o.Now()
	for _, t := range tasks {
		if (t.Name != TaskExport && t.Name != TaskImport) || now.Sub(t.Start) < taskLease {
			continue
		}
		// Taking the lease means nobody renews it: its process stopped.
		ok, err := s.o.Stores.Leases.AcquireLease(ctx, taskLeaseName(t.ID), s.holder, now, taskLease)
		if err != nil || !ok || s.running()[t.ID] {
			continue
		}
		if t.Name == TaskExport {
			if err := s.deleteExport(ctx, exportIDOf(t)); err != nil {
				continue
			}
		}
		s.o.Log.WithFields(logrus.Fields{"task_id": t.ID, "task": t.Name}).Warn("task interrupted: the process running it stopped")
		s.finishTask(t.ID, errors.New("interrupted: the process running it stopped; start it again"))
	}
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
