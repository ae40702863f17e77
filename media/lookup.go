package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
)

// Request says which media is wanted and how far to go for it.
type Request struct {
	Origin, MediaID string
	// Local is the homeserver asking: media of any other origin is remote
	// and, when not stored yet, fetched on its behalf.
	Local string
	// Remote allows fetching remote media that is not stored yet.
	Remote bool
	// Wait is how long to wait for the upload of a reserved media ID; at
	// zero a reserved ID answers ErrNotYetUploaded at once.
	Wait time.Duration
}

// Find returns the media r names: from the row cache or the store, fetched
// from its server if it is remote and r.Remote allows, or, for a reserved ID,
// once its upload completes. Media that is not there wraps storage.ErrNotFound.
func (s *Service) Find(ctx context.Context, r Request) (*storage.Media, error) {
	if r.Origin != r.Local {
		m, err := s.remoteMedia(ctx, r)
		if errors.Is(err, storage.ErrNotFound) {
			return s.awaitUpload(ctx, r, err)
		}
		return m, err
	}
	key := r.Origin + "/" + r.MediaID
	if until, ok := s.missing.Get(key); ok && time.Now().Before(until) {
		return nil, fmt.Errorf("media %s (remembered): %w", key, storage.ErrNotFound)
	}
	m, err := s.Local(ctx, r.Origin, r.MediaID)
	if !errors.Is(err, storage.ErrNotFound) {
		return m, err
	}
	m, err = s.awaitUpload(ctx, r, err)
	if err != nil && errors.Is(err, storage.ErrNotFound) && !errors.Is(err, ErrNotYetUploaded) {
		s.missing.Add(key, time.Now().Add(missingTTL))
	}
	return m, err
}

// Local looks stored media up, through the row cache, which Forget keeps
// current.
func (s *Service) Local(ctx context.Context, origin, mediaID string) (*storage.Media, error) {
	key := origin + "/" + mediaID
	if r, ok := s.rows.Get(key); ok && time.Now().Before(r.until) {
		s.observe.Cache("media", true)
		return r.m, nil
	}
	s.observe.Cache("media", false)
	m, err := s.media.Media(ctx, origin, mediaID)
	if err != nil {
		return nil, err
	}
	s.rows.Add(key, cachedRow{m: m, until: time.Now().Add(rowTTL)})
	return m, nil
}

type remoteFailure struct {
	err   error
	until time.Time
}

// remoteMedia returns media of another server: from storage when it was
// fetched before, otherwise fetched once (concurrent requests share the
// fetch, which goes on when the request that started it hangs up) and stored
// as remote media. Failures are remembered for downloads.failureCacheMinutes.
func (s *Service) remoteMedia(ctx context.Context, r Request) (*storage.Media, error) {
	if s.remote == nil || slices.Contains(s.cfg.IgnoredHosts, r.Origin) {
		return nil, fmt.Errorf("%s: %w", r.Origin, ErrNoRemote)
	}
	m, err := s.Local(ctx, r.Origin, r.MediaID)
	if !errors.Is(err, storage.ErrNotFound) {
		return m, err
	}
	if !r.Remote {
		return nil, fmt.Errorf("%s/%s: %w", r.Origin, r.MediaID, ErrNotCached)
	}
	key := r.Origin + "/" + r.MediaID
	if f, ok := s.failures.Get(key); ok && time.Now().Before(f.until) {
		return nil, f.err
	}
	return s.fetches.Do(ctx, key, func(ctx context.Context) (*storage.Media, error) {
		unlock, err := s.locks.Lock(ctx, "remote:"+key) // one process fetches
		if err != nil {
			return nil, err
		}
		defer unlock()
		// A fetch that finished since our look-up (here or in another process) is used.
		if m, err := s.media.Media(ctx, r.Origin, r.MediaID); err == nil {
			return m, nil
		}
		m, err := s.fetch(ctx, r.Local, r.Origin, r.MediaID)
		if errors.Is(err, context.Canceled) {
			return nil, err // shutting down: not the remote's failure
		}
		s.observe.RemoteFetch(err == nil)
		if err != nil {
			err = fmt.Errorf("fetch %s: %w: %w", key, ErrRemoteFailed, err)
			until := time.Now().Add(time.Duration(s.cfg.Downloads.FailureCacheMinutes) * time.Minute)
			s.failures.Add(key, remoteFailure{err: err, until: until})
			return nil, err
		}
		return m, nil
	})
}

// fetch downloads remote media for the local homeserver local and stores it;
// downloads.maxBytes is enforced on the stream.
func (s *Service) fetch(ctx context.Context, local, server, mediaID string) (*storage.Media, error) {
	remote, err := s.remote.Download(ctx, local, server, mediaID)
	if err != nil {
		return nil, err
	}
	defer remote.Body.Close()
	var body io.Reader = remote.Body
	if limit := s.cfg.Downloads.MaxBytes; limit > 0 {
		body = &capReader{r: remote.Body, left: limit}
	}
	id := s.blobs.Roles().RemoteMedia
	staged, err := s.stage(ctx, id, body)
	if err != nil {
		return nil, fmt.Errorf("store remote media: %w", err)
	}
	defer staged.Abort()
	m := &storage.Media{
		Origin: server, MediaID: mediaID, UploadName: FileName(remote.FileName), ContentType: ContentType(remote.ContentType),
		SHA256: staged.SHA256(), SizeBytes: staged.Size(), DatastoreID: id, CreatedAt: time.Now(),
		Authenticated: s.cfg.Freeze,
	}
	// Published with its row, so a purge of the same bytes cannot take them.
	err = s.media.CreateMedia(ctx, m, storage.Quota{}, staged.Commit)
	if errors.Is(err, storage.ErrExists) {
		return s.media.Media(ctx, server, mediaID) // another process fetched it first
	}
	if errors.Is(err, storage.ErrQuarantined) {
		return nil, fmt.Errorf("%s/%s has quarantined bytes: %w", server, mediaID, storage.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	s.log.WithFields(logrus.Fields{"origin": server, "media_id": mediaID, "bytes": m.SizeBytes}).Debug("remote media cached")
	s.stored(m)
	return m, nil
}

// capReader fails once more than left bytes come through, whatever the
// remote's Content-Length said.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrRemoteTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, ErrRemoteTooLarge
	}
	return n, err
}
