package media

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mediarepo/mediarepo/crashpoint"
	"github.com/mediarepo/mediarepo/storage"
)

// Reserve reserves a fresh media ID of origin for userID to upload to later
// (MSC2246), for uploads.maxAgeSeconds.
func (s *Service) Reserve(ctx context.Context, origin, userID string) (*storage.Pending, error) {
	now := time.Now()
	p := &storage.Pending{
		Origin: origin, UserID: userID, CreatedAt: now,
		ExpiresAt: now.Add(time.Duration(s.cfg.Uploads.MaxAgeSeconds) * time.Second),
	}
	_, maxPending := s.Quota(userID)
	var err error
	for attempt := 0; ; attempt++ {
		p.MediaID = newMediaID()
		err = s.res.CreatePending(ctx, p, maxPending)
		if err == nil || !errors.Is(err, storage.ErrExists) || attempt == 2 {
			break
		}
	}
	if errors.Is(err, storage.ErrLimitExceeded) {
		return nil, fmt.Errorf("%w: %w", ErrTooManyPending, err)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UploadTo stores u as the media mediaID that u.UserID reserved. Everything
// that can refuse it (uploaded already, not reserved, another user's, quota)
// is checked before a byte of the body is read.
func (s *Service) UploadTo(ctx context.Context, mediaID string, u Upload) (*storage.Media, error) {
	if _, err := s.media.Media(ctx, u.Origin, mediaID); err == nil {
		return nil, ErrCannotOverwrite
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	p, err := s.res.Pending(ctx, u.Origin, mediaID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotReserved
	}
	if err != nil {
		return nil, err
	}
	if p.UserID != u.UserID {
		return nil, ErrNotOwner
	}
	if err := s.checkBefore(ctx, u); err != nil {
		return nil, err
	}
	m, blob, err := s.receive(ctx, u)
	if err != nil {
		return nil, err
	}
	defer blob.Abort()
	crashpoint.Hit("upload-staged")
	m.MediaID = mediaID
	quota, _ := s.Quota(m.UserID)
	err = s.res.CompleteUpload(ctx, m, quota, publish(blob))
	switch {
	case errors.Is(err, storage.ErrExists):
		return nil, ErrCannotOverwrite
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("expired during the upload: %w", ErrNotReserved)
	case err != nil:
		return nil, err
	}
	s.addBlurhash(ctx, m)
	s.uploaded(m)
	return m, nil
}

// awaitUpload waits, up to r.Wait, for a reserved media ID to be uploaded.
// It returns notFound for IDs that are not reserved, and ErrNotYetUploaded
// when the wait runs out.
func (s *Service) awaitUpload(ctx context.Context, r Request, notFound error) (*storage.Media, error) {
	if _, err := s.res.Pending(ctx, r.Origin, r.MediaID); err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		// Not reserved, or its upload completed since the caller looked.
		if m, err := s.media.Media(ctx, r.Origin, r.MediaID); err == nil {
			return m, nil
		}
		return nil, notFound
	}
	woken, release := s.waiters.watch(r.Origin, r.MediaID)
	defer release()
	deadline := time.NewTimer(r.Wait)
	defer deadline.Stop()
	recheck := time.NewTicker(s.cfg.Recheck)
	defer recheck.Stop()
	for {
		// Registered before looking, so an upload finishing in between is not missed.
		m, err := s.media.Media(ctx, r.Origin, r.MediaID)
		if err == nil {
			return m, nil
		}
		// A database outage shorter than the wait is waited out.
		if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrUnavailable) {
			return nil, err
		}
		select {
		case <-woken:
		case <-recheck.C:
		case <-deadline.C:
			if errors.Is(err, storage.ErrUnavailable) {
				return nil, err
			}
			return nil, fmt.Errorf("%s/%s after %v: %w", r.Origin, r.MediaID, r.Wait, ErrNotYetUploaded)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// waiters lets downloads wait for an upload in this process; uploads
// completed elsewhere arrive through storage.UploadWatcher.
type waiters struct {
	mu      sync.Mutex
	waiting map[string]*wait
}

type wait struct {
	ch      chan struct{}
	waiters int
}

// watch returns a channel closed when the upload of origin/mediaID completes,
// and a release function the caller must call when it stops waiting.
func (u *waiters) watch(origin, mediaID string) (<-chan struct{}, func()) {
	key := origin + "/" + mediaID
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.waiting == nil {
		u.waiting = make(map[string]*wait)
	}
	w := u.waiting[key]
	if w == nil {
		w = &wait{ch: make(chan struct{})}
		u.waiting[key] = w
	}
	w.waiters++
	return w.ch, func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if w.waiters--; w.waiters == 0 && u.waiting[key] == w {
			delete(u.waiting, key)
		}
	}
}

// wake releases everyone waiting for origin/mediaID.
func (u *waiters) wake(origin, mediaID string) {
	key := origin + "/" + mediaID
	u.mu.Lock()
	defer u.mu.Unlock()
	if w := u.waiting[key]; w != nil {
		close(w.ch)
		delete(u.waiting, key)
	}
}

// watchUploads relays other processes' completed uploads to local waiters
// until ctx is done.
func (s *Service) watchUploads(ctx context.Context, watcher storage.UploadWatcher) {
	for ctx.Err() == nil {
		err := watcher.WatchUploads(ctx, s.waiters.wake)
		if ctx.Err() != nil {
			return
		}
		s.log.WithError(err).Warn("watching for uploads by other processes failed; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}
