package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/mxid"
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
		return s.servePlaceholder(w, r, err, s.conf().Quarantine.ReplaceDownloads, 512, 512, "not_allowed.png")
	}
	if !hasName {
		name = m.UploadName
	}
	return s.serveOriginal(w, r, m, name, authenticated)
}

// serveOriginal sends the media's own bytes named name, or redirects to
// where its datastore serves them where the route may redirect.
func (s *Server) serveOriginal(w http.ResponseWriter, r *http.Request, m *storage.Media, name string, authenticated bool) error {
	contentType := media.ContentType(m.ContentType) // rows from before types were normalised
	disposition := contentDisposition(contentType, media.FileName(name))
	if mayRedirect(r, authenticated) && s.redirect(w, r, m, contentType, disposition) {
		return nil
	}
	n := limitRanges(r, m.SizeBytes)
	if err := s.takeDownload(r, n); err != nil {
		return err
	}
	s.paceWrite(w, n)
	blob, err := s.media.Open(r.Context(), m)
	if err != nil {
		return err
	}
	defer blob.Close()
	s.media.Accessed(m)
	serveMedia(w, r, blob, mediaResponse{
		contentType:  contentType,
		sha256:       m.SHA256,
		disposition:  disposition,
		modified:     m.CreatedAt,
		cacheControl: cacheControl(authenticated),
	})
	return nil
}

// mayRedirect: clients of the authenticated routes must follow redirects
// (the spec's 307/308); on the legacy routes only a client that asks.
func mayRedirect(r *http.Request, authenticated bool) bool {
	return authenticated || r.URL.Query().Get("allow_redirect") == "true"
}

// redirect answers 307 to where m's datastore serves its bytes, if it
// does; false leaves the answer to the caller. A datastore failing to
// say is logged and the bytes are served instead.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, m *storage.Media, contentType, disposition string) bool {
	url, err := s.media.RedirectURL(r.Context(), m, storage.RedirectHeaders{
		ContentType: contentType, ContentDisposition: disposition, Inline: strings.HasPrefix(disposition, "inline"),
	})
	if err != nil {
		logFrom(r.Context()).WithError(err).Warn("redirect URL not made; serving the bytes")
		return false
	}
	if url == "" {
		return false
	}
	s.media.Accessed(m)
	w.Header().Set("Location", url)
	w.Header().Set("Cache-Control", "no-store") // presigned URLs expire
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
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
	if !mxid.ValidServerName(serverName) || !mxid.ValidMediaID(mediaID) {
		return nil, errNotFound("Media not found (malformed server name or media ID)")
	}
	m, err := s.media.Find(r.Context(), media.Request{
		Origin: serverName, MediaID: mediaID, Local: homeserverFrom(r.Context()).Name,
		// The legacy routes fetch nothing new while media is frozen behind
		// authentication, nor when asked not to.
		Remote: authenticated || (!s.conf().Repo.FreezeUnauthenticatedMedia && r.URL.Query().Get("allow_remote") != "false"),
		Wait:   uploadWait(r),
	})
	if err != nil {
		return nil, err
	}
	if !authenticated && m.Authenticated {
		return nil, errNotFound("Media not found (this media is only served on /_matrix/client/v1/media)")
	}
	if err := s.checkQuarantine(r, m); err != nil {
		return nil, err
	}
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
