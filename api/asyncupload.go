package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/mediarepo/mediarepo/mxid"
)

// Waiting for an upload (MSC2246): timeout_ms defaults to 20 s and is capped
// at 60 s, as in Synapse.
const (
	defaultUploadWait = 20 * time.Second
	maxUploadWait     = 60 * time.Second
)

// handleCreate serves POST /_matrix/media/v1/create: it reserves a media ID
// for the user to upload to later.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := s.media.Reserve(ctx, homeserverFrom(ctx).Name, userFrom(ctx).UserID)
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
	if serverName != homeserverFrom(ctx).Name || !mxid.ValidMediaID(mediaID) {
		return errNotFound("No such media ID was created on this server")
	}
	up, err := s.uploadRequest(w, r)
	if err != nil {
		return err
	}
	m, err := s.media.UploadTo(ctx, mediaID, up)
	if err != nil {
		return err
	}
	logStored(r, m)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// uploadWait is how long a download may wait for a reserved media ID's
// upload: timeout_ms (checked by checkDownloadParams), capped.
func uploadWait(r *http.Request) time.Duration {
	v := r.URL.Query().Get("timeout_ms")
	if v == "" {
		return defaultUploadWait
	}
	ms, _ := strconv.ParseInt(v, 10, 64)
	return min(time.Duration(ms)*time.Millisecond, maxUploadWait)
}
