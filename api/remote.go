package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/storage"
)

// remoteMedia returns media of another server: from storage when it was
// fetched before, otherwise fetched once (concurrent requests share the
// fetch), stored as remote media, and returned. Failures are remembered for
// downloads.failureCacheMinutes.
func (s *Server) remoteMedia(r *http.Request, server, mediaID string, authenticated bool) (*storage.Media, error) {
	ctx := r.Context()
	if s.federation == nil || slices.Contains(s.cfg.Federation.IgnoredHosts, server) {
		return nil, errNotFound("Media not found (this repository does not fetch media from that server)")
	}
	m, err := s.localMedia(ctx, server, mediaID)
	if !errors.Is(err, storage.ErrNotFound) {
		return m, err
	}
	// The legacy routes fetch nothing new while media is frozen behind
	// authentication, nor when asked not to.
	if !authenticated && (s.cfg.Repo.FreezeUnauthenticatedMedia || r.URL.Query().Get("allow_remote") == "false") {
		return nil, errNotFound("Media not found (remote media is fetched only on /_matrix/client/v1/media)")
	}
	key := server + "/" + mediaID
	if e, ok := s.remoteFailures.Get(key); ok && time.Now().Before(e.until) {
		return nil, e.err
	}
	v, err, _ := s.remoteFlight.Do(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.Timeouts.FederationTimeoutSeconds)*time.Second)
		defer cancel()
		// A fetch that finished since our look-up (here or in another process) is used.
		if m, err := s.meta.Media(fctx, server, mediaID); err == nil {
			return m, nil
		}
		m, err := s.fetchRemote(fctx, homeserverFrom(ctx).Name, server, mediaID)
		if err != nil {
			me := remoteError(err)
			s.remoteFailures.Add(key, remoteFailure{err: me, until: time.Now().Add(time.Duration(s.cfg.Downloads.FailureCacheMinutes) * time.Minute)})
			return nil, me
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*storage.Media), nil
}

type remoteFailure struct {
	err   error
	until time.Time
}

// fetchRemote downloads remote media for the local homeserver origin and
// stores it; downloads.maxBytes is enforced on the stream.
func (s *Server) fetchRemote(ctx context.Context, origin, server, mediaID string) (*storage.Media, error) {
	remote, err := s.federation.Download(ctx, origin, server, mediaID)
	if err != nil {
		return nil, err
	}
	defer remote.Body.Close()
	var body io.Reader = remote.Body
	if limit := s.cfg.Downloads.MaxBytes; limit > 0 {
		body = &capReader{r: remote.Body, left: limit}
	}
	sum, size, err := s.blobs[s.remoteStore].Put(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("store remote media %s/%s: %w", server, mediaID, err)
	}
	contentType := remote.ContentType
	if contentType == "" || !printable(contentType, 255) {
		contentType = "application/octet-stream"
	}
	name := remote.FileName
	if len(name) > maxFileNameBytes || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		name = ""
	}
	m := &storage.Media{
		Origin: server, MediaID: mediaID, UploadName: name, ContentType: contentType,
		SHA256: sum, SizeBytes: size, DatastoreID: s.remoteStore, CreatedAt: time.Now(),
		Authenticated: s.cfg.Repo.FreezeUnauthenticatedMedia,
	}
	err = s.meta.CreateMedia(ctx, m, storage.Quota{})
	if errors.Is(err, storage.ErrExists) {
		return s.meta.Media(ctx, server, mediaID) // another process fetched it first
	}
	if err != nil {
		return nil, err
	}
	logFrom(ctx).WithFields(logrus.Fields{"origin": server, "media_id": mediaID, "bytes": size}).Debug("remote media cached")
	s.queueThumbnails(ctx, m)
	return m, nil
}

// errRemoteTooLarge is returned by capReader past downloads.maxBytes.
var errRemoteTooLarge = errors.New("remote media larger than downloads.maxBytes")

// capReader fails once more than left bytes come through, whatever the
// remote's Content-Length said.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, errRemoteTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errRemoteTooLarge
	}
	return n, err
}

// remoteError is what a failed remote fetch answers.
func remoteError(err error) *Error {
	switch {
	case errors.Is(err, federation.ErrNotFound):
		return &Error{Status: 404, Code: "M_NOT_FOUND", Message: "Media not found on the remote server", Err: err}
	case errors.Is(err, errRemoteTooLarge):
		return &Error{Status: 502, Code: "M_TOO_LARGE", Message: "The remote media is larger than this server accepts", Err: err}
	}
	return &Error{Status: 502, Code: "M_UNKNOWN", Message: "The remote server could not be reached for this media", Err: err}
}
