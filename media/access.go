package media

import (
	"context"
	"sync"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// Access times are kept here and written in one transaction now and then:
// retention by last access must not cost a database write per download.
const (
	accessFlushInterval = time.Minute
	// accessEntries bounds the accesses held between flushes; past it they
	// are flushed at once.
	accessEntries = 20_000
)

// accesses are the last accesses not written yet.
type accesses struct {
	mu   sync.Mutex
	at   map[storage.MediaKey]time.Time
	full chan struct{} // signalled when at reaches accessEntries
}

// Accessed records that m was downloaded or thumbnailed now.
func (s *Service) Accessed(m *storage.Media) {
	if s.access == nil {
		return
	}
	a := &s.accessed
	a.mu.Lock()
	a.at[storage.MediaKey{Origin: m.Origin, MediaID: m.MediaID}] = time.Now()
	n := len(a.at)
	a.mu.Unlock()
	if n >= accessEntries {
		select {
		case a.full <- struct{}{}:
		default:
		}
	}
}

// recordAccesses flushes the accesses every accessFlushInterval, when they
// fill up, and once more when ctx ends.
func (s *Service) recordAccesses(ctx context.Context) {
	tick := time.NewTicker(accessFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// The service is closing: one last write, briefly.
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flushAccesses(flush)
			cancel()
			return
		case <-tick.C:
		case <-s.accessed.full:
		}
		s.flushAccesses(ctx)
	}
}

// flushAccesses writes the accesses held; on failure they are kept for the
// next flush, unless newer ones replaced them.
func (s *Service) flushAccesses(ctx context.Context) {
	a := &s.accessed
	a.mu.Lock()
	batch := a.at
	a.at = make(map[storage.MediaKey]time.Time, len(batch))
	a.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := s.access.RecordAccess(ctx, batch); err != nil {
		s.log.WithError(err).WithField("media", len(batch)).Warn("last accesses not recorded; will retry")
		a.mu.Lock()
		for k, t := range batch {
			if _, newer := a.at[k]; !newer && len(a.at) < 2*accessEntries {
				a.at[k] = t
			}
		}
		a.mu.Unlock()
	}
}

// Forget drops what is cached of one media (its row changed or went: a
// quarantine, a purge); with an empty origin, of every media.
func (s *Service) Forget(origin, mediaID string) {
	if origin == "" {
		s.rows.Purge()
		s.missing.Purge()
		return
	}
	key := origin + "/" + mediaID
	s.rows.Remove(key)
	s.missing.Remove(key)
}
