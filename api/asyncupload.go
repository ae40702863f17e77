package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// Waiting for an upload (MSC2246): timeout_ms defaults to 20 s and is capped
// at 60 s, as in Synapse. A waiter also looks again every Options.UploadRecheck,
// so an upload completed by a process that cannot notify it is seen anyway.
const (
	defaultUploadWait = 20 * time.Second
	maxUploadWait     = 60 * time.Second
	sweepInterval     = 10 * time.Minute
)

// handleCreate serves POST /_matrix/media/v1/create: it reserves a media ID
// for the user to upload to later.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := time.Now()
	p := &storage.Pending{
		Origin:    homeserverFrom(ctx).Name,
		UserID:    userFrom(ctx).UserID,
		CreatedAt: now,
		ExpiresAt: now.Add(time.Duration(s.cfg.Uploads.MaxAgeSeconds) * time.Second),
	}
	var err error
	for attempt := 0; ; attempt++ {
		p.MediaID = newMediaID()
		_, maxPending := s.quota(p.UserID)
		err = s.meta.CreatePending(ctx, p, maxPending)
		if err == nil || !errors.Is(err, storage.ErrExists) || attempt == 2 {
			break
		}
	}
	if errors.Is(err, storage.ErrLimitExceeded) {
		return &Error{Status: 429, Code: "M_LIMIT_EXCEEDED", Message: "Too many media IDs reserved and not uploaded yet", Err: err}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"content_uri":       "mxc://" + p.Origin + "/" + p.MediaID,
		"unused_expires_at": p.ExpiresAt.UnixMilli(),
	})
	return nil
}

// handleUploadTo serves PUT /_matrix/media/*/upload/{serverName}/{mediaId}:
// the upload to a reserved media ID.
func (s *Server) handleUploadTo(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	serverName, _, err := pathVar(r, "serverName")
	if err != nil {
		return err
	}
	mediaID, _, err := pathVar(r, "mediaId")
	if err != nil {
		return err
	}
	if serverName != homeserverFrom(ctx).Name || !storage.ValidMediaID(mediaID) {
		return errNotFound("No such media ID was created on this server")
	}
	// Refused before a byte of the body is read.
	if _, err := s.meta.Media(ctx, serverName, mediaID); err == nil {
		return errCannotOverwrite()
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	p, err := s.meta.Pending(ctx, serverName, mediaID)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound("This media ID was never created, or it expired")
	}
	if err != nil {
		return err
	}
	if p.UserID != userFrom(ctx).UserID {
		return &Error{Status: 403, Code: "M_FORBIDDEN", Message: "This media ID was created by another user"}
	}
	if err := s.checkQuotaBeforeUpload(ctx, p.UserID); err != nil {
		return err
	}

	m, err := s.receiveUpload(w, r)
	if err != nil {
		return err
	}
	m.MediaID = mediaID
	quota, _ := s.quota(m.UserID)
	err = s.meta.CompleteUpload(ctx, m, quota)
	switch {
	case errors.Is(err, storage.ErrExists):
		return errCannotOverwrite()
	case errors.Is(err, storage.ErrNotFound):
		return errNotFound("This media ID expired before the upload finished")
	case err != nil:
		return err
	}
	s.uploaded(ctx, m)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func errCannotOverwrite() *Error {
	return &Error{Status: 409, Code: "M_CANNOT_OVERWRITE_MEDIA", Message: "This media has already been uploaded"}
}

// awaitUpload waits, up to the request's timeout_ms, for a reserved media ID
// to be uploaded. It returns the original not-found error for IDs that are
// not reserved, and 504 M_NOT_YET_UPLOADED when the wait runs out.
func (s *Server) awaitUpload(r *http.Request, serverName, mediaID string, notFound error) (*storage.Media, error) {
	ctx := r.Context()
	if _, err := s.meta.Pending(ctx, serverName, mediaID); err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		// Not reserved, or its upload completed since the caller looked.
		if m, err := s.meta.Media(ctx, serverName, mediaID); err == nil {
			return m, nil
		}
		return nil, notFound
	}
	wait := defaultUploadWait
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		ms, _ := strconv.ParseInt(v, 10, 64) // validated by checkDownloadParams
		wait = min(time.Duration(ms)*time.Millisecond, maxUploadWait)
	}
	woken, release := s.waiters.watch(serverName, mediaID)
	defer release()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	recheck := time.NewTicker(s.recheck)
	defer recheck.Stop()
	for {
		// Registered before looking, so an upload finishing in between is not missed.
		m, err := s.meta.Media(ctx, serverName, mediaID)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		select {
		case <-woken:
		case <-recheck.C:
		case <-deadline.C:
			return nil, &Error{Status: 504, Code: "M_NOT_YET_UPLOADED", Message: "The media has not been uploaded yet"}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// uploadWaiters lets downloads wait for an upload in this process; uploads
// completed elsewhere arrive through storage.UploadWatcher.
type uploadWaiters struct {
	mu      sync.Mutex
	waiting map[string]*uploadWait
}

type uploadWait struct {
	ch      chan struct{}
	waiters int
}

// watch returns a channel closed when the upload of origin/mediaID completes,
// and a release function the caller must call when it stops waiting.
func (u *uploadWaiters) watch(origin, mediaID string) (<-chan struct{}, func()) {
	key := origin + "/" + mediaID
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.waiting == nil {
		u.waiting = make(map[string]*uploadWait)
	}
	w := u.waiting[key]
	if w == nil {
		w = &uploadWait{ch: make(chan struct{})}
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
func (u *uploadWaiters) wake(origin, mediaID string) {
	key := origin + "/" + mediaID
	u.mu.Lock()
	defer u.mu.Unlock()
	if w := u.waiting[key]; w != nil {
		close(w.ch)
		delete(u.waiting, key)
	}
}

// watchUploads relays other processes' completed uploads to local waiters,
// where the metadata store can announce them. It runs until ctx is done.
func (s *Server) watchUploads(ctx context.Context) {
	watcher, ok := s.meta.(storage.UploadWatcher)
	if !ok {
		return
	}
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

// sweepReservations deletes expired media reservations now and then.
func (s *Server) sweepReservations(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		if n, err := s.meta.DeleteExpiredPending(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.WithError(err).Warn("sweeping expired media reservations failed")
		} else if n > 0 {
			s.log.WithField("count", n).Info("expired media reservations swept")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startBackground runs the server's background work: thumbnail workers,
// the upload watcher and the reservation sweeper. Close stops it all.
func (s *Server) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBackground = cancel
	s.startPregenerator(ctx)
	for _, job := range []func(context.Context){s.watchUploads, s.sweepReservations} {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			job(ctx)
		}()
	}
}
