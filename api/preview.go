package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/storage"
)

// maxPreviewURL bounds the URLs previewed (and the cache's key).
const maxPreviewURL = 2048

// handlePreview serves GET /_matrix/media/*/preview_url and
// /_matrix/client/v1/media/preview_url. Answers, failures included, are
// cached per URL, hour of ts and language; og:image is stored as local media.
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
	if err != nil || len(raw) > maxPreviewURL || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return errInvalidParam("url must be an absolute http(s) URL of at most 2048 characters")
	}
	ts := time.Now().UnixMilli()
	if v := q.Get("ts"); v != "" {
		if ts, err = strconv.ParseInt(v, 10, 64); err != nil || ts < 0 {
			return errInvalidParam("ts must be a non-negative integer")
		}
	}
	lang := r.Header.Get("Accept-Language")
	if lang == "" || len(lang) > 128 {
		lang = s.cfg.URLPreviews.DefaultLanguage
	}
	bucket := ts / time.Hour.Milliseconds()

	ctx := r.Context()
	p, err := s.meta.URLPreview(ctx, target.String(), bucket, lang)
	if errors.Is(err, storage.ErrNotFound) {
		key := target.String() + "\x00" + strconv.FormatInt(bucket, 10) + "\x00" + lang
		var v any
		v, err, _ = s.previewFlight.Do(key, func() (any, error) {
			// Shared by every waiting request: it must not die with the first one.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
				time.Duration(s.cfg.Timeouts.URLPreviewTimeoutSeconds)*time.Second)
			defer cancel()
			return s.makePreview(pctx, target, bucket, lang)
		})
		if err == nil {
			p = v.(*storage.URLPreview)
		}
	}
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

// makePreview fetches target, stores its image and caches the answer.
func (s *Server) makePreview(ctx context.Context, target *url.URL, bucket int64, lang string) (*storage.URLPreview, error) {
	select {
	case s.previewSlots <- struct{}{}:
		defer func() { <-s.previewSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	entry := &storage.URLPreview{URL: target.String(), Bucket: bucket, Lang: lang, CreatedAt: time.Now()}
	res, err := s.previews.Preview(ctx, target, lang)
	if err == nil && res.Image != nil {
		err = s.storePreviewImage(ctx, res)
	}
	if err != nil {
		e := previewError(err)
		logFrom(ctx).WithError(err).WithField("errcode", e.Code).Debug("url preview failed")
		entry.Status, entry.Errcode = e.Status, e.Code
		b, _ := json.Marshal(e.body())
		entry.Body = string(b)
	} else {
		b, err := json.Marshal(res.OG)
		if err != nil {
			return nil, err
		}
		entry.Status, entry.Body = http.StatusOK, string(b)
	}
	if err := s.meta.CreateURLPreview(ctx, entry); err != nil {
		return nil, err
	}
	return entry, nil
}

// storePreviewImage keeps the preview's image as local media of the request's
// homeserver and points og:image at it.
func (s *Server) storePreviewImage(ctx context.Context, res *preview.Result) error {
	img := res.Image
	sum, size, err := s.blobs[s.localStore].Put(ctx, bytes.NewReader(img.Data))
	if err != nil {
		return err
	}
	m := &storage.Media{
		Origin: homeserverFrom(ctx).Name, MediaID: newMediaID(), ContentType: img.ContentType,
		SHA256: sum, SizeBytes: size, DatastoreID: s.localStore, CreatedAt: time.Now(),
		Authenticated: s.cfg.Repo.FreezeUnauthenticatedMedia,
	}
	if err := s.meta.CreateMedia(ctx, m, storage.Quota{}); err != nil {
		return err
	}
	s.queueThumbnails(ctx, m)
	res.OG["og:image"] = "mxc://" + m.Origin + "/" + m.MediaID
	res.OG["og:image:type"] = img.ContentType
	res.OG["matrix:image:size"] = size
	if img.Width > 0 {
		res.OG["og:image:width"], res.OG["og:image:height"] = img.Width, img.Height
	}
	logFrom(ctx).WithFields(logrus.Fields{"media_id": m.MediaID, "bytes": size}).Debug("preview image stored")
	return nil
}

// previewError is what a failed preview answers.
func previewError(err error) *Error {
	switch {
	case netguard.Blocked(err):
		return &Error{Status: 403, Code: "M_FORBIDDEN", Message: "This URL may not be previewed", Err: err}
	case errors.Is(err, preview.ErrTooLarge):
		return &Error{Status: 502, Code: "M_TOO_LARGE", Message: "The page is too large to preview", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: 504, Code: "M_UNKNOWN", Message: "The page took too long to fetch", Err: err}
	}
	return &Error{Status: 502, Code: "M_UNKNOWN", Message: "The URL could not be fetched", Err: err}
}
