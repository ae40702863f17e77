// Package retention removes what nothing needs any more, on a schedule:
// cached remote media not used for downloads.expireAfterDays, thumbnails
// older than thumbnails.expireAfterDays, URL previews older than
// urlPreviews.expireAfterDays, expired media reservations, and blobs no row
// refers to once they are older than a grace period. With several processes
// on one database, a lease makes one of them run each job at a time. Every
// run logs what it removed. The Remover, which deletes rows and then the
// blobs left unreferenced, is shared with the admin API's purges. It imports
// storage, bus and config, and owns its goroutines until Close.
package retention

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
)

// Stores are the metadata stores the jobs use; one engine may be all of them.
type Stores struct {
	Refs         storage.RetentionStore
	Catalog      storage.CatalogStore
	Purge        storage.PurgeStore
	Reservations storage.ReservationStore
	Previews     storage.PreviewStore
	Leases       storage.LeaseStore
}

// Options are the Service's dependencies.
type Options struct {
	Config *config.Config
	// Blobs are the datastores by ID; those that are storage.BlobSweepers
	// are swept for orphans.
	Blobs  map[string]storage.BlobStore
	Stores Stores
	// Bus tells every process's caches of removed media and thumbnails.
	Bus *bus.Bus
	Log *logrus.Entry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Start is the wait before each job's first run; 0 is a minute, so a
	// start-up is not slowed by them.
	Start time.Duration
	// Purged, if set, is told how many media each removal took.
	Purged func(n int)
}

// Service runs the retention jobs.
type Service struct {
	cfg     *config.Config
	blobs   map[string]storage.BlobStore
	db      Stores
	remover *Remover
	bus     *bus.Bus
	log     *logrus.Entry
	now     func() time.Time
	holder  string // this process, in leases
	purged  func(n int)

	stop context.CancelFunc
	done sync.WaitGroup
}

// Job is one periodic removal.
type Job struct {
	Name     string
	Interval time.Duration
	Run      func(ctx context.Context) (Removed, error)
}

// Removed is what a run of a job removed.
type Removed struct {
	Examined, Rows, Blobs int
	Bytes                 int64
}

// New checks opts and starts every job the config turns on.
func New(opts Options) (*Service, error) {
	st := opts.Stores
	if opts.Config == nil || st.Refs == nil || st.Catalog == nil || st.Purge == nil || st.Reservations == nil ||
		st.Previews == nil || st.Leases == nil || opts.Bus == nil || opts.Log == nil {
		return nil, errors.New("retention.New: Config, every Stores field, Bus and Log are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{
		cfg: opts.Config, blobs: opts.Blobs, db: opts.Stores, bus: opts.Bus, log: opts.Log, now: now,
		remover: &Remover{Store: opts.Stores.Purge, Blobs: opts.Blobs, Log: opts.Log},
		holder:  storage.LeaseHolder(), purged: opts.Purged,
	}
	if s.purged == nil {
		s.purged = func(int) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	start := opts.Start
	if start <= 0 {
		start = time.Minute
	}
	for _, j := range s.Jobs() {
		s.done.Add(1)
		go s.every(ctx, start, j)
	}
	return s, nil
}

// Jobs are the jobs the config turns on.
func (s *Service) Jobs() []Job {
	var jobs []Job
	c := s.cfg
	if c.Downloads.ExpireAfterDays > 0 {
		jobs = append(jobs, Job{"remote_media", time.Hour, s.ExpireRemoteMedia})
	}
	if c.Thumbnails.ExpireAfterDays > 0 {
		jobs = append(jobs, Job{"thumbnails", time.Hour, s.ExpireThumbnails})
	}
	if c.URLPreviews.ExpireAfterDays > 0 {
		jobs = append(jobs, Job{"url_previews", time.Hour, s.ExpirePreviews})
	}
	jobs = append(jobs, Job{"reservations", 10 * time.Minute, s.ExpireReservations})
	if c.Retention.OrphanBlobGraceHours > 0 {
		jobs = append(jobs, Job{"orphan_blobs", time.Duration(c.Retention.OrphanBlobSweepHours) * time.Hour, s.SweepOrphans})
	}
	return jobs
}

// Close stops the jobs, waits for a run in progress to stop, and gives up
// the leases held.
func (s *Service) Close() error {
	s.stop()
	s.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, j := range s.Jobs() {
		s.db.Leases.ReleaseLease(ctx, leaseName(j), s.holder)
	}
	return nil
}

func leaseName(j Job) string { return "retention/" + j.Name }

// every runs j after start, then every interval, until ctx is done.
func (s *Service) every(ctx context.Context, start time.Duration, j Job) {
	defer s.done.Done()
	t := time.NewTimer(start)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.RunOnce(ctx, j)
		t.Reset(j.Interval)
	}
}

// RunOnce runs j if this process holds (or takes) its lease, and logs what
// it removed. The lease lasts a little less than the interval, so a process
// that dies hands the job over by the next run.
func (s *Service) RunOnce(ctx context.Context, j Job) (ran bool) {
	log := s.log.WithField("job", j.Name)
	ok, err := s.db.Leases.AcquireLease(ctx, leaseName(j), s.holder, s.now(), j.Interval*9/10)
	if err != nil {
		if ctx.Err() == nil {
			log.WithError(err).Warn("retention job skipped: its lease could not be taken")
		}
		return false
	}
	if !ok {
		log.Debug("retention job runs in another process")
		return false
	}
	start := s.now()
	res, err := j.Run(ctx)
	log = log.WithFields(logrus.Fields{
		"examined": res.Examined, "rows": res.Rows, "blobs": res.Blobs, "bytes": res.Bytes,
		"duration_ms": s.now().Sub(start).Milliseconds(),
	})
	if err != nil && ctx.Err() == nil {
		log.WithError(err).Warn("retention job stopped")
		return true
	}
	log.Info("retention job done")
	return true
}

// days is now minus n days.
func (s *Service) days(n int) time.Time { return s.now().Add(-time.Duration(n) * 24 * time.Hour) }

// ExpireRemoteMedia removes cached remote media (of servers not in
// homeservers) not downloaded or thumbnailed for downloads.expireAfterDays,
// but never quarantined or protected media.
func (s *Service) ExpireRemoteMedia(ctx context.Context) (Removed, error) {
	local := make([]string, len(s.cfg.Homeservers))
	for i, hs := range s.cfg.Homeservers {
		local[i] = hs.Name
	}
	rows, _, err := s.db.Catalog.FindMedia(ctx, storage.MediaFilter{
		NotOrigins: local, IdleSince: s.days(s.cfg.Downloads.ExpireAfterDays), NotQuarantined: true, NotProtected: true,
	})
	if err != nil {
		return Removed{}, err
	}
	keys := make([]storage.MediaKey, len(rows))
	for i, m := range rows {
		keys[i] = storage.MediaKey{Origin: m.Origin, MediaID: m.MediaID}
	}
	removed, blobs, err := s.remover.Remove(ctx, keys, local)
	s.purged(len(removed))
	res := Removed{Examined: len(rows), Rows: len(removed), Blobs: blobs}
	for _, m := range removed {
		res.Bytes += m.SizeBytes
	}
	if len(removed) > 0 {
		s.changed(ctx)
	}
	return res, err
}

// ExpireThumbnails removes thumbnails made more than
// thumbnails.expireAfterDays ago; they are made again when asked for.
func (s *Service) ExpireThumbnails(ctx context.Context) (Removed, error) {
	refs, err := s.db.Purge.DeleteThumbnails(ctx, nil, s.days(s.cfg.Thumbnails.ExpireAfterDays))
	if err != nil {
		return Removed{}, err
	}
	if len(refs) > 0 {
		s.changed(ctx)
	}
	return Removed{Examined: len(refs), Rows: len(refs), Blobs: s.remover.DeleteBlobs(ctx, refs)}, nil
}

// ExpirePreviews removes cached URL previews older than
// urlPreviews.expireAfterDays.
func (s *Service) ExpirePreviews(ctx context.Context) (Removed, error) {
	n, err := s.db.Previews.DeleteURLPreviews(ctx, s.days(s.cfg.URLPreviews.ExpireAfterDays))
	return Removed{Rows: int(n)}, err
}

// ExpireReservations removes media IDs reserved for uploads that expired.
func (s *Service) ExpireReservations(ctx context.Context) (Removed, error) {
	n, err := s.db.Reservations.DeleteExpiredPending(ctx, s.now())
	return Removed{Rows: int(n)}, err
}

// changed tells every process's caches that media or thumbnails went.
func (s *Service) changed(ctx context.Context) {
	if err := s.bus.Publish(ctx, bus.Media, ""); err != nil {
		s.log.WithError(err).Warn("other processes not told of removed media; their caches catch up within a minute")
	}
}

// SweepOrphans deletes, in every datastore that can list its blobs, the blobs
// older than the grace period that no row refers to. A blob being uploaded
// again meanwhile is kept (see storage.BlobSweeper).
func (s *Service) SweepOrphans(ctx context.Context) (Removed, error) {
	var res Removed
	cutoff := s.now().Add(-time.Duration(s.cfg.Retention.OrphanBlobGraceHours) * time.Hour)
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
				return s.db.Refs.BlobReferenced(ctx, id, b.SHA256)
			})
			if deleted {
				res.Blobs++
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

// Remover deletes media rows, then each blob no row references any more; a
// blob shared with other media stays. Its methods are safe for concurrent
// use.
type Remover struct {
	Store storage.PurgeStore
	Blobs map[string]storage.BlobStore
	Log   *logrus.Entry
}

// Remove deletes the media keys (tombstoning the IDs of origins in local)
// and then their unreferenced blobs. It returns the rows removed and how
// many blobs it deleted.
func (r *Remover) Remove(ctx context.Context, keys []storage.MediaKey, local []string) ([]storage.Media, int, error) {
	if len(keys) == 0 {
		return nil, 0, nil
	}
	removed, refs, err := r.Store.DeleteMedia(ctx, keys, local)
	if err != nil {
		return removed, 0, err
	}
	return removed, r.DeleteBlobs(ctx, refs), nil
}

// DeleteBlobs deletes each blob that no row references any more and
// returns how many it deleted. A failure is logged: the orphan sweep
// collects what is left.
func (r *Remover) DeleteBlobs(ctx context.Context, refs []storage.BlobRef) int {
	n := 0
	for _, ref := range refs {
		store, ok := r.Blobs[ref.DatastoreID]
		if !ok {
			r.Log.WithField("datastore", ref.DatastoreID).Warn("blob of removed media is in a datastore no longer configured; left in place")
			continue
		}
		ran, err := r.Store.DeleteBlob(ctx, ref, func(ctx context.Context) error { return store.Delete(ctx, ref.SHA256) })
		if err != nil {
			r.Log.WithError(err).WithField("sha256", ref.SHA256).Warn("blob of removed media not deleted; the orphan sweep will")
			continue
		}
		if ran {
			n++
		}
	}
	return n
}
