// Package retention removes what nothing needs any more. Today that is blobs
// no media or thumbnail row refers to, left by crashes, refused uploads and
// lost races, once they are older than a grace period. It runs as background
// work owned by the Service and stopped by Close, and logs what each run
// removed. It imports storage and config.
package retention

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
)

// Options are the Service's dependencies.
type Options struct {
	Config config.Retention
	// Blobs are the datastores by ID; those that are storage.BlobSweepers
	// are swept.
	Blobs map[string]storage.BlobStore
	Refs  storage.RetentionStore
	Log   *logrus.Entry
}

// Service runs the retention work.
type Service struct {
	cfg   config.Retention
	blobs map[string]storage.BlobStore
	refs  storage.RetentionStore
	log   *logrus.Entry
	now   func() time.Time

	stop context.CancelFunc
	done sync.WaitGroup
}

// New checks opts and starts the periodic sweep (unless turned off).
func New(opts Options) (*Service, error) {
	if opts.Refs == nil || opts.Log == nil {
		return nil, errors.New("retention.New: Refs and Log are required")
	}
	s := &Service{cfg: opts.Config, blobs: opts.Blobs, refs: opts.Refs, log: opts.Log, now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if s.cfg.OrphanBlobGraceHours > 0 {
		s.done.Add(1)
		go s.every(ctx, time.Duration(s.cfg.OrphanBlobSweepHours)*time.Hour, s.sweepLogged)
	}
	return s, nil
}

// Close stops the background work and waits for a run in progress to stop.
func (s *Service) Close() error {
	s.stop()
	s.done.Wait()
	return nil
}

// every runs job after a first short wait (so a start-up is not slowed by
// it), then every interval, until ctx is done.
func (s *Service) every(ctx context.Context, interval time.Duration, job func(context.Context)) {
	defer s.done.Done()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		job(ctx)
		t.Reset(interval)
	}
}

// Swept is what a sweep of orphan blobs did.
type Swept struct {
	Examined, Deleted int
	Bytes             int64
}

func (s *Service) sweepLogged(ctx context.Context) {
	start := s.now()
	res, err := s.SweepOrphans(ctx)
	log := s.log.WithFields(logrus.Fields{
		"examined": res.Examined, "deleted": res.Deleted, "bytes": res.Bytes,
		"duration_ms": s.now().Sub(start).Milliseconds(),
	})
	if err != nil && ctx.Err() == nil {
		log.WithError(err).Warn("orphan blob sweep stopped")
		return
	}
	log.Info("orphan blobs swept")
}

// SweepOrphans deletes, in every datastore that can list its blobs, the blobs
// older than the grace period that no row refers to. A blob being uploaded
// again meanwhile is kept (see storage.BlobSweeper).
func (s *Service) SweepOrphans(ctx context.Context) (Swept, error) {
	var res Swept
	cutoff := s.now().Add(-time.Duration(s.cfg.OrphanBlobGraceHours) * time.Hour)
	ids := make([]string, 0, len(s.blobs))
	for id := range s.blobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sw, ok := s.blobs[id].(storage.BlobSweeper)
		if !ok {
			continue
		}
		err := sw.Blobs(ctx, func(b storage.BlobInfo) error {
			if !b.Modified.Before(cutoff) {
				return nil
			}
			res.Examined++
			deleted, err := sw.Sweep(ctx, b.SHA256, cutoff, func(ctx context.Context) (bool, error) {
				return s.refs.BlobReferenced(ctx, id, b.SHA256)
			})
			if deleted {
				res.Deleted++
				res.Bytes += b.Size
			}
			return err
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
