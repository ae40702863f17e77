package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// handleThumbnail serves GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}.
func (s *Server) handleThumbnail(w http.ResponseWriter, r *http.Request) error {
	return s.thumbnail(w, r, true)
}

// handleThumbnailLegacy serves the unauthenticated /_matrix/media/*/thumbnail.
func (s *Server) handleThumbnailLegacy(w http.ResponseWriter, r *http.Request) error {
	return s.thumbnail(w, r, false)
}

func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request, authenticated bool) error {
	spec, err := s.thumbnailSpec(w, r)
	if err != nil {
		return err
	}
	m, err := s.requestedMedia(r, authenticated)
	if err != nil {
		return s.servePlaceholder(w, r, err, s.conf().Quarantine.ReplaceThumbnails, spec.Width, spec.Height, "thumbnail.png")
	}
	th, err := s.thumbs.Thumbnail(r.Context(), m, spec)
	if errors.Is(err, thumbnails.ErrUseOriginal) {
		return s.serveOriginal(w, r, m, m.UploadName, authenticated)
	}
	if err != nil {
		return err
	}
	n := limitRanges(r, th.SizeBytes)
	if err := s.takeDownload(r, n); err != nil {
		return err
	}
	s.paceWrite(w, n)
	blob, err := s.thumbs.Open(r.Context(), th)
	if errors.Is(err, storage.ErrNotFound) {
		// Removed meanwhile (thumbnail expiry in another process): make it again.
		s.thumbs.Forget()
		if th, err = s.thumbs.Thumbnail(r.Context(), m, spec); err == nil {
			blob, err = s.thumbs.Open(r.Context(), th)
		}
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	s.media.Accessed(m)
	serveMedia(w, r, blob, mediaResponse{
		contentType:  th.ContentType,
		sha256:       th.SHA256,
		disposition:  "inline; filename=thumbnail." + extension(th.ContentType),
		modified:     th.CreatedAt,
		cacheControl: cacheControl(authenticated),
	})
	return nil
}

// thumbnailSpec reads width, height, method and animated, and picks the
// size to serve and whether it may be WebP, which depends on the Accept
// header when WebP is preferred: the response says so in Vary.
func (s *Server) thumbnailSpec(w http.ResponseWriter, r *http.Request) (thumbnails.Spec, error) {
	if s.thumbs.VariesByAccept() {
		w.Header().Add("Vary", "Accept")
	}
	q := r.URL.Query()
	width, err := positiveParam(q, "width")
	if err != nil {
		return thumbnails.Spec{}, err
	}
	height, err := positiveParam(q, "height")
	if err != nil {
		return thumbnails.Spec{}, err
	}
	method := q.Get("method")
	if method != "" && method != config.MethodScale && method != config.MethodCrop {
		return thumbnails.Spec{}, errInvalidParam("method must be scale or crop")
	}
	animated, err := animatedParam(q, s.conf().Thumbnails.DefaultAnimated)
	if err != nil {
		return thumbnails.Spec{}, err
	}
	if err := checkDownloadParams(r); err != nil {
		return thumbnails.Spec{}, err
	}
	return s.thumbs.Spec(width, height, method, animated, acceptsWebP(r.Header.Values("Accept"))), nil
}

// acceptsWebP reports whether an Accept header names image/webp with a
// non-zero quality. */* and image/* do not count: clients that send only
// those (and every client before WebP thumbnails) keep JPEG and PNG.
func acceptsWebP(accept []string) bool {
	for _, line := range accept {
		for _, item := range strings.Split(line, ",") {
			typ, params, _ := strings.Cut(item, ";")
			if !strings.EqualFold(strings.TrimSpace(typ), "image/webp") {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}

func positiveParam(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, &Error{Status: 400, Code: "M_MISSING_PARAM", Message: name + " is required"}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errInvalidParam(name + " must be a positive integer")
	}
	return n, nil
}

// animatedParam reads animated (or MSC2705's unstable name) as true/false.
func animatedParam(q url.Values, dflt bool) (bool, error) {
	for _, name := range []string{"animated", "org.matrix.msc2705.animated"} {
		switch q.Get(name) {
		case "":
			continue
		case "true":
			return true, nil
		case "false":
			return false, nil
		default:
			return false, errInvalidParam(name + " must be true or false")
		}
	}
	return dflt, nil
}

func extension(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return "jpg"
	case "image/gif":
		return "gif"
	case "image/webp":
		return "webp"
	default:
		return "png"
	}
}
