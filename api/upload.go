package api

import (
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/storage"
)

// handleUpload serves POST /_matrix/media/*/upload: the body streams to the
// local datastore (hashed on the way), then the metadata row is written.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) error {
	up, err := s.uploadRequest(w, r)
	if err != nil {
		return err
	}
	m, err := s.media.Upload(r.Context(), up)
	if err != nil {
		return err
	}
	logStored(r, m)
	out := map[string]string{"content_uri": "mxc://" + m.Origin + "/" + m.MediaID}
	if m.Blurhash != "" {
		out[blurhashKey] = m.Blurhash
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// blurhashKey is MSC2448's field of an upload's answer and of media info.
const blurhashKey = "xyz.amorgan.blurhash"

// uploadRequest reads an upload's file name, type and body, capping the body
// at uploads.maxBytes; the service refuses a declared length over it before
// reading.
func (s *Server) uploadRequest(w http.ResponseWriter, r *http.Request) (media.Upload, error) {
	name := r.URL.Query().Get("filename")
	if len(name) > media.MaxFileNameBytes || !utf8.ValidString(name) {
		return media.Upload{}, errInvalidParam("filename must be valid UTF-8 of at most 1024 bytes")
	}
	contentType := r.Header.Get("Content-Type")
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if !media.Printable(contentType, media.MaxContentTypeBytes) {
		return media.Upload{}, errInvalidParam("Content-Type must be printable UTF-8, at most 255 bytes")
	}
	var body io.Reader = r.Body
	if limit := s.conf().Uploads.MaxBytes; limit > 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	body = s.pacedBody(w, body)
	ctx := r.Context()
	return media.Upload{
		Origin: homeserverFrom(ctx).Name, UserID: userFrom(ctx).UserID,
		Name: name, ContentType: contentType, Body: body, Size: r.ContentLength,
	}, nil
}

// logStored logs a stored upload at debug level.
func logStored(r *http.Request, m *storage.Media) {
	logFrom(r.Context()).WithFields(logrus.Fields{
		"origin": m.Origin, "media_id": m.MediaID, "sha256": m.SHA256, "bytes": m.SizeBytes, "content_type": m.ContentType,
	}).Debug("media stored")
}
