package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mediarepo/mediarepo/media"
)

// maxPreviewURL bounds the URLs previewed (and the cache's key).
const maxPreviewURL = 2048

// handlePreview serves GET /_matrix/media/*/preview_url and
// /_matrix/client/v1/media/preview_url.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) error {
	if s.previews == nil {
		return errUnrecognized(http.StatusNotFound)
	}
	q := r.URL.Query()
	raw := q.Get("url")
	if raw == "" {
		return &Error{Status: 400, Code: "M_MISSING_PARAM", Message: "url is required"}
	}
	target, err := url.Parse(raw)
	if err != nil || len(raw) > maxPreviewURL || !utf8.ValidString(raw) || !media.Printable(target.String(), maxPreviewURL*3) ||
		(target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return errInvalidParam("url must be an absolute http(s) URL of at most 2048 characters of valid UTF-8")
	}
	ts := time.Now()
	if v := q.Get("ts"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return errInvalidParam("ts must be a non-negative integer")
		}
		ts = time.UnixMilli(ms)
	}
	lang := r.Header.Get("Accept-Language")
	if !media.Printable(lang, 128) || lang == "" {
		lang = s.conf().URLPreviews.DefaultLanguage // what a header may carry is not what a database stores
	}
	ctx := r.Context()
	p, err := s.previews.Preview(ctx, homeserverFrom(ctx).Name, target, ts, lang)
	if err != nil {
		return err
	}
	if p.Errcode != "" {
		stateFrom(ctx).err = &Error{Status: p.Status, Code: p.Errcode} // for the access line
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	w.Write([]byte(p.Body))
	return nil
}
