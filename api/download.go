package api

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	name, hasName, err := pathVar(r, "fileName")
	if err != nil {
		return err
	}
	if err := checkDownloadParams(r); err != nil {
		return err
	}
	m, err := s.requestedMedia(r, authenticated)
	if err != nil {
		return err
	}
	if !hasName {
		name = m.UploadName
	}
	return s.serveOriginal(w, r, m, name, authenticated)
}

// serveOriginal sends the media's own bytes named name.
func (s *Server) serveOriginal(w http.ResponseWriter, r *http.Request, m *storage.Media, name string, authenticated bool) error {
	if err := s.takeDownload(r, m.SizeBytes); err != nil {
		return err
	}
	blob, err := s.openBlob(r.Context(), m.DatastoreID, m.SHA256, m.Origin+"/"+m.MediaID)
	if err != nil {
		return err
	}
	defer blob.Close()
	serveMedia(w, r, blob, mediaResponse{
		contentType:  m.ContentType,
		sha256:       m.SHA256,
		disposition:  contentDisposition(m.ContentType, name),
		modified:     m.CreatedAt,
		cacheControl: cacheControl(authenticated),
	})
	return nil
}

// openBlob opens a blob of the named datastore; what names the media for errors.
func (s *Server) openBlob(ctx context.Context, datastore, sha256, what string) (io.ReadSeekCloser, error) {
	blobs, ok := s.blobs[datastore]
	if !ok {
		return nil, fmt.Errorf("%s is in datastore %q, which is not configured", what, datastore)
	}
	blob, err := blobs.Open(ctx, sha256)
	if errors.Is(err, storage.ErrNotFound) {
		e := errNotFound("Media not found")
		e.Err = fmt.Errorf("blob of %s is missing: %w", what, err)
		return nil, e
	}
	return blob, err
}

func cacheControl(authenticated bool) string {
	if authenticated {
		return cacheAuthenticated
	}
	return cacheUnauthenticated
}

// requestedMedia finds the media the route's {serverName}/{mediaId} name, if
// the route may serve it: media of the request's homeserver, or of another
// server (fetched over federation), and on unauthenticated routes only media
// from before the freeze. Invalid IDs are refused before any lookup.
func (s *Server) requestedMedia(r *http.Request, authenticated bool) (*storage.Media, error) {
	serverName, _, err := pathVar(r, "serverName")
	if err != nil {
		return nil, err
	}
	mediaID, _, err := pathVar(r, "mediaId")
	if err != nil {
		return nil, err
	}
	if !storage.ValidServerName(serverName) || !storage.ValidMediaID(mediaID) {
		return nil, errNotFound("Media not found (malformed server name or media ID)")
	}
	var m *storage.Media
	if serverName != homeserverFrom(r.Context()).Name {
		m, err = s.remoteMedia(r, serverName, mediaID, authenticated)
	} else {
		m, err = s.localMedia(r.Context(), serverName, mediaID)
	}
	if errors.Is(err, storage.ErrNotFound) {
		m, err = s.awaitUpload(r, serverName, mediaID, err) // reserved IDs wait for their upload
	}
	if err != nil {
		return nil, err
	}
	if !authenticated && m.Authenticated {
		return nil, errNotFound("Media not found (this media is only served on /_matrix/client/v1/media)")
	}
	return m, nil
}

// localMedia looks up stored media, through the cache.
func (s *Server) localMedia(ctx context.Context, serverName, mediaID string) (*storage.Media, error) {
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
