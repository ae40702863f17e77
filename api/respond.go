package api

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mediaCSP is the spec's sandbox policy plus Synapse's media-src, so that
// active content served from here can never run as our origin.
const mediaCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; " +
	"style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

// mediaHeaders go on every media response; shared, never modified.
var mediaHeaders = map[string][]string{
	"Content-Security-Policy":   {mediaCSP},
	"X-Content-Security-Policy": {"sandbox;"},
	"Referrer-Policy":           {"no-referrer"},
	"X-Robots-Tag":              {"noindex, nofollow, noarchive, noimageindex"},
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	// A failed media request must not keep the media headers it had set.
	for _, k := range []string{"Content-Disposition", "ETag", "Last-Modified", "Content-Security-Policy"} {
		h.Del(k)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		return
	}
	writeJSON(w, e.Status, e.body())
}

// mediaResponse describes the bytes serveMedia sends.
type mediaResponse struct {
	contentType  string
	sha256       string // becomes the strong ETag
	disposition  string // a Content-Disposition built by contentDisposition
	modified     time.Time
	cacheControl string
}

// serveMedia is the only way media bytes leave the server. http.ServeContent
// brings Range, If-Range, If-None-Match, If-Modified-Since and HEAD.
func serveMedia(w http.ResponseWriter, r *http.Request, blob io.ReadSeeker, m mediaResponse) {
	h := w.Header()
	h.Set("Content-Type", m.contentType)
	h.Set("Content-Disposition", m.disposition)
	h.Set("ETag", `"`+m.sha256+`"`)
	h.Set("Cache-Control", m.cacheControl)
	for k, v := range mediaHeaders {
		h[k] = v
	}
	http.ServeContent(w, r, "", m.modified, blob)
}

// inlineTypes are the spec's types safe to show inline; everything else, SVG
// and HTML included, is an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true,
	"image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true,
	"audio/ogg": true, "audio/wave": true, "audio/wav": true, "audio/x-wav": true,
	"audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// contentDisposition builds the header for a response of contentType named
// fileName (none if empty), per RFC 6266: a plain token as filename=, anything
// else as filename*=utf-8” with percent-encoding, so no name can break out of
// the header or be misparsed.
func contentDisposition(contentType, fileName string) string {
	base, _, _ := strings.Cut(contentType, ";")
	disposition := "attachment"
	if inlineTypes[strings.ToLower(strings.TrimSpace(base))] {
		disposition = "inline"
	}
	if fileName == "" {
		return disposition
	}
	if isToken(fileName) {
		return disposition + "; filename=" + fileName
	}
	return disposition + "; filename*=utf-8''" + percentEncode(fileName)
}

// isToken reports whether s is made of RFC 8187 attr-chars only: an RFC 9110
// token without % ' and *, which some browsers would decode or misread.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAttrChar(s[i]) {
			return false
		}
	}
	return s != ""
}

func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// percentEncode keeps attr-chars and encodes every other byte.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
