package sqlstore

import (
	"context"
	"fmt"

	"github.com/mediarepo/mediarepo/storage"
)

var _ storage.Locker = (*Store)(nil)

// Lock implements storage.Locker with the dialect's transaction lock: a
// transaction that holds it until unlock, so a process that dies gives it
// up with its connection. At most half of the pool's connections hold or
// wait for locks, so that holders always have connections to do their
// work with. Without a transaction lock (SQLite: one process) it
// only returns.
func (s *Store) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if s.q.LockKey == "" {
		return func() {}, nil
	}
	select {
	case s.lockSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		if err != nil {
			<-s.lockSlots
		}
	}()
	defer s.classify(&err)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if err := s.lock(ctx, tx, key); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	return func() {
		tx.Rollback()
		<-s.lockSlots
	}, nil
}

// lockSlotsFor is how many locks may be held or waited for at once on a
// pool of maxOpen connections (0: unlimited).
func lockSlotsFor(maxOpen int) int {
	if maxOpen <= 0 {
		return 16
	}
	return max(1, maxOpen/2)
}
