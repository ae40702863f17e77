package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mediarepo/mediarepo/storage"
)

// Cache-Control for media. Authenticated responses must not be stored by
// shared caches, which would then hand them out without a token.
const (
	cacheAuthenticated   = "private, max-age=86400"
	cacheUnauthenticated = "public, max-age=86400"
)

// handleDownload serves GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}].
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) error {
	return s.download(w, r, true)
}

// handleDownloadLegacy serves the unauthenticated /_matrix/media/*/download,
// which does not serve media frozen behind authentication.
func (s *Server) handleDownloadLegacy(w http.ResponseWriter, r *http.Request) error {
	return s.download(w, r, false)
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, authenticated bool) error {
	serverName, _, err := pathVar(r, "serverName")
	if err != nil {
		return err
	}
	mediaID, _, err := pathVar(r, "mediaId")
	if err != nil {
		return err
	}
	name, hasName, err := pathVar(r, "fileName")
	if err != nil {
		return err
	}
	if err := checkDownloadParams(r); err != nil {
		return err
	}
	ctx := r.Context()
	m, err := s.localMedia(r, serverName, mediaID)
	if err != nil {
		return err
	}
	if !authenticated && m.Authenticated {
		return errNotFound("Media not found (this media is only served on /_matrix/client/v1/media)")
	}
	blobs, ok := s.blobs[m.DatastoreID]
	if !ok {
		return fmt.Errorf("media %s/%s is in datastore %q, which is not configured", m.Origin, m.MediaID, m.DatastoreID)
	}
	blob, err := blobs.Open(ctx, m.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		e := errNotFound("Media not found")
		e.Err = fmt.Errorf("blob of %s/%s is missing: %w", m.Origin, m.MediaID, err)
		return e
	}
	if err != nil {
		return err
	}
	defer blob.Close()

	if !hasName {
		name = m.UploadName
	}
	cache := cacheUnauthenticated
	if authenticated {
		cache = cacheAuthenticated
	}
	serveMedia(w, r, m, blob, name, cache)
	return nil
}

// localMedia finds media of the request's homeserver. Invalid IDs are refused
// before any lookup; other servers' media is not fetched (yet): 404.
func (s *Server) localMedia(r *http.Request, serverName, mediaID string) (*storage.Media, error) {
	if !storage.ValidServerName(serverName) || !storage.ValidMediaID(mediaID) {
		return nil, errNotFound("Media not found (malformed server name or media ID)")
	}
	ctx := r.Context()
	if serverName != homeserverFrom(ctx).Name {
		return nil, errNotFound("Media not found (remote media is not served by this repository yet)")
	}
	key := serverName + "/" + mediaID
	if m, ok := s.mediaCache.Get(key); ok {
		return m, nil
	}
	m, err := s.meta.Media(ctx, serverName, mediaID)
	if err != nil {
		return nil, err
	}
	s.mediaCache.Add(key, m)
	return m, nil
}

// checkDownloadParams validates the optional query parameters the spec defines,
// so that a typo is a 400 rather than silently ignored.
func checkDownloadParams(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	for _, name := range []string{"allow_remote", "allow_redirect"} {
		if v := q.Get(name); v != "" && v != "true" && v != "false" {
			return errInvalidParam(name + " must be true or false")
		}
	}
	if v := q.Get("timeout_ms"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return errInvalidParam("timeout_ms must be a non-negative integer")
		}
	}
	return nil
}
