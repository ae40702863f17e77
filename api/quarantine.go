package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/mediarepo/mediarepo/storage"
)

// errQuarantined marks the 404 of quarantined media, so the download and
// thumbnail routes can answer with the replacement image instead.
var errQuarantined = errors.New("media quarantined")

// checkQuarantine refuses quarantined media, unless an admin asks with
// Synapse's admin_unsafely_bypass_quarantine=true.
func (s *Server) checkQuarantine(r *http.Request, m *storage.Media) error {
	if m.QuarantinedBy == "" {
		return nil
	}
	if r.URL.Query().Get("admin_unsafely_bypass_quarantine") == "true" && s.ops.admin != nil {
		if u := userFrom(r.Context()); u != nil && s.ops.admin.ServerAdmin(r.Context(), caller(r)) == nil {
			return nil
		}
	}
	return &Error{Status: 404, Code: "M_NOT_FOUND", Message: "Media not found", Err: errQuarantined}
}

// servePlaceholder answers a quarantined media's download or thumbnail with
// the replacement image at w x h, if quarantine.replace* asks for it;
// otherwise it returns err, the 404.
func (s *Server) servePlaceholder(w http.ResponseWriter, r *http.Request, err error, replace bool, width, height int, name string) error {
	if !errors.Is(err, errQuarantined) || !replace || s.ops.blocked == nil {
		return err
	}
	img := s.ops.blocked.PNG(width, height)
	sum := sha256.Sum256(img)
	serveMedia(w, r, bytes.NewReader(img), mediaResponse{
		contentType:  "image/png",
		sha256:       hex.EncodeToString(sum[:]),
		disposition:  "inline; filename=" + name,
		modified:     time.Unix(0, 0),
		cacheControl: cacheAuthenticated,
	})
	return nil
}
