package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/tasks"
)

// TaskName is matrix-media-repo's name of a transfer task.
const TaskName = "storage_migration"

// Params are a transfer task's parameters, matrix-media-repo's names.
type Params struct {
	BeforeTS int64  `json:"before_ts"`
	Source   string `json:"source_datastore_id"`
	Target   string `json:"target_datastore_id"`
}

// ServiceOptions are a Service's dependencies.
type ServiceOptions struct {
	Store Store
	Blobs map[string]storage.BlobStore
	Tasks *tasks.Runner
	// Changed is told when rows moved (Options.Changed).
	Changed func()
	Log     *logrus.Entry
}

// Service runs transfers, one per source datastore at a time across every
// process sharing the database.
type Service struct{ o ServiceOptions }

// NewService checks o and returns the Service.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Store == nil || o.Blobs == nil || o.Tasks == nil || o.Log == nil {
		return nil, errors.New("transfer.NewService: Store, Blobs, Tasks and Log are required")
	}
	return &Service{o: o}, nil
}

// ErrUnknownDatastore is the error of a transfer from or to a datastore
// that is not configured, or from one to itself.
var ErrUnknownDatastore = errors.New("unknown datastore")

// Check says whether a transfer from from to to can start.
func (s *Service) Check(from, to string) error {
	switch {
	case s.o.Blobs[from] == nil:
		return fmt.Errorf("%w: Source datastore does not appear to exist", ErrUnknownDatastore)
	case s.o.Blobs[to] == nil:
		return fmt.Errorf("%w: Target datastore does not appear to exist", ErrUnknownDatastore)
	case from == to:
		return fmt.Errorf("%w: Source and target datastore are the same", ErrUnknownDatastore)
	}
	return nil
}

// Start runs a transfer as a task and returns its ID.
func (s *Service) Start(ctx context.Context, from, to string, before time.Time) (int64, error) {
	if err := s.Check(from, to); err != nil {
		return 0, err
	}
	params := Params{BeforeTS: before.UnixMilli(), Source: from, Target: to}
	return s.o.Tasks.Start(ctx, TaskName, params, func(ctx context.Context, id int64) error {
		log := s.o.Log.WithFields(logrus.Fields{"task_id": id, "from": from, "to": to})
		p, err := s.Run(ctx, from, to, before, log, func(p Progress) { s.o.Tasks.Report(ctx, id, p, false) })
		s.o.Tasks.Report(context.WithoutCancel(ctx), id, p, true)
		return err
	})
}

// Run transfers in this goroutine, holding the source's lease, and logs its
// progress every ten seconds.
func (s *Service) Run(ctx context.Context, from, to string, before time.Time, log *logrus.Entry, progress func(Progress)) (Progress, error) {
	if err := s.Check(from, to); err != nil {
		return Progress{}, err
	}
	var p Progress
	err := s.o.Tasks.Exclusive(ctx, "transfer:"+from, func(ctx context.Context) error {
		log.Info("transfer started")
		last := time.Now()
		var err error
		p, err = Run(ctx, Options{
			Store: s.o.Store, Blobs: s.o.Blobs, From: from, To: to, Before: before, Changed: s.o.Changed, Log: log,
			Progress: func(p Progress) {
				if progress != nil {
					progress(p)
				}
				if time.Since(last) >= 10*time.Second {
					last = time.Now()
					log.WithFields(fields(p)).Info("transferring")
				}
			},
		})
		return err
	})
	if errors.Is(err, tasks.ErrBusy) {
		return p, fmt.Errorf("a transfer from datastore %s runs in another process: %w", from, err)
	}
	entry := log.WithFields(fields(p))
	if err != nil {
		entry.WithError(err).Error("transfer stopped; the blob it was moving is still in the source, run it again to go on")
	} else {
		entry.Info("transfer finished")
	}
	return p, err
}

func fields(p Progress) logrus.Fields {
	return logrus.Fields{"blobs": p.Blobs, "bytes": p.Bytes, "rows": p.Rows, "skipped": p.Skipped, "deleted_at_source": p.Deleted}
}
