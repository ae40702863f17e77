package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/storage"
)

// maxFileNameBytes bounds the stored upload name.
const maxFileNameBytes = 1024

// handleUpload serves POST /_matrix/media/*/upload: the body streams to the
// local datastore (hashed on the way), then the metadata row is written.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := s.checkQuotaBeforeUpload(ctx, userFrom(ctx).UserID); err != nil {
		return err
	}
	m, err := s.receiveUpload(w, r)
	if err != nil {
		return err
	}
	quota, _ := s.quota(m.UserID)
	// A collision of 192 random bits is not expected; retrying costs nothing.
	for attempt := 0; ; attempt++ {
		m.MediaID = newMediaID()
		err = s.meta.CreateMedia(ctx, m, quota)
		if err == nil || !errors.Is(err, storage.ErrExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return err
	}
	s.uploaded(ctx, m)
	writeJSON(w, http.StatusOK, map[string]string{"content_uri": "mxc://" + m.Origin + "/" + m.MediaID})
	return nil
}

// receiveUpload validates an upload request, streams its body into the local
// datastore and returns the media row to write, without its MediaID. Limits
// are enforced while streaming; on any error nothing is left behind.
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request) (*storage.Media, error) {
	ctx := r.Context()
	name := r.URL.Query().Get("filename")
	if len(name) > maxFileNameBytes || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return nil, errInvalidParam("filename must be valid UTF-8 without NUL, at most 1024 bytes")
	}
	contentType := r.Header.Get("Content-Type")
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if !printable(contentType, 255) {
		return nil, errInvalidParam("Content-Type must be printable UTF-8, at most 255 bytes")
	}

	body := r.Body
	if limit := s.cfg.Uploads.MaxBytes; limit > 0 {
		if r.ContentLength > limit {
			return nil, errTooLarge(fmt.Sprintf("Upload is larger than the limit of %d bytes", limit))
		}
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	// Refuse a too-small upload before a byte reaches the datastore.
	if min := s.cfg.Uploads.MinBytes; min > 0 {
		head := make([]byte, min)
		n, err := io.ReadFull(body, head)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, &Error{Status: 400, Code: "M_TOO_SMALL", Message: "Upload is smaller than the minimum of " + strconv.FormatInt(min, 10) + " bytes"}
		}
		if err != nil {
			return nil, fmt.Errorf("read upload: %w", err)
		}
		body = io.NopCloser(io.MultiReader(bytes.NewReader(head[:n]), body))
	}

	sum, size, err := s.blobs[s.localStore].Put(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	return &storage.Media{
		Origin:        homeserverFrom(ctx).Name,
		UploadName:    name,
		ContentType:   contentType,
		UserID:        userFrom(ctx).UserID,
		SHA256:        sum,
		SizeBytes:     size,
		DatastoreID:   s.localStore,
		CreatedAt:     time.Now(),
		Authenticated: s.cfg.Repo.FreezeUnauthenticatedMedia,
	}, nil
}

// uploaded runs what follows every stored upload: a log line, waking
// downloads that wait for it, and its thumbnails.
func (s *Server) uploaded(ctx context.Context, m *storage.Media) {
	logFrom(ctx).WithFields(logrus.Fields{
		"origin": m.Origin, "media_id": m.MediaID, "sha256": m.SHA256, "bytes": m.SizeBytes, "content_type": m.ContentType,
	}).Debug("media stored")
	s.waiters.wake(m.Origin, m.MediaID)
	s.queueThumbnails(ctx, m)
}

// newMediaID returns 32 characters of [A-Za-z0-9_-] (192 random bits).
func newMediaID() string {
	var b [24]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// printable accepts valid UTF-8 of at most max bytes without control
// characters: what every database stores and every header can carry.
func printable(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
