package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// generateTimeout bounds one thumbnail generation, which outlives the request
// that started it when other requests wait for the same result.
const generateTimeout = 60 * time.Second

// handleThumbnail serves GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}.
func (s *Server) handleThumbnail(w http.ResponseWriter, r *http.Request) error {
	return s.thumbnail(w, r, true)
}

// handleThumbnailLegacy serves the unauthenticated /_matrix/media/*/thumbnail.
func (s *Server) handleThumbnailLegacy(w http.ResponseWriter, r *http.Request) error {
	return s.thumbnail(w, r, false)
}

func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request, authenticated bool) error {
	spec, err := s.thumbnailSpec(r)
	if err != nil {
		return err
	}
	m, err := s.requestedMedia(r, authenticated)
	if err != nil {
		return err
	}
	th, err := s.thumbnailOf(r.Context(), m, spec)
	if errors.Is(err, thumbnails.ErrUseOriginal) {
		return s.serveOriginal(w, r, m, m.UploadName, authenticated)
	}
	if err != nil {
		return err
	}
	if err := s.takeDownload(r, th.SizeBytes); err != nil {
		return err
	}
	blob, err := s.openBlob(r.Context(), th.DatastoreID, th.SHA256, "thumbnail of "+m.Origin+"/"+m.MediaID)
	if err != nil {
		return err
	}
	defer blob.Close()
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
// size to serve.
func (s *Server) thumbnailSpec(r *http.Request) (thumbnails.Spec, error) {
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
	animated, err := animatedParam(q, s.cfg.Thumbnails.DefaultAnimated)
	if err != nil {
		return thumbnails.Spec{}, err
	}
	if err := checkDownloadParams(r); err != nil {
		return thumbnails.Spec{}, err
	}
	return thumbnails.Choose(s.cfg.Thumbnails, width, height, method, animated), nil
}

// thumbnailOf returns the stored thumbnail of m for spec, generating and
// storing it first if needed. The configured sizes of a media are made
// together from one decode (as after an upload); any other size alone.
// Concurrent calls share the work; a thumbnail another process stored first
// is used as it is.
func (s *Server) thumbnailOf(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	key := thumbKey(m, spec)
	if th, ok := s.thumbCache.Get(key); ok {
		return cachedThumbnail(th)
	}
	if s.configuredSize(spec) {
		if err := s.ensureConfiguredSizes(ctx, m); err != nil {
			return nil, err
		}
		if th, ok := s.thumbCache.Get(key); ok {
			return cachedThumbnail(th)
		}
	}
	v, err, _ := s.thumbFlight.Do(key, func() (any, error) {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), generateTimeout)
		defer cancel()
		stored, err := s.meta.Thumbnails(gctx, m.Origin, m.MediaID)
		if err != nil {
			return nil, err
		}
		if th := findThumbnail(stored, spec); th != nil {
			s.thumbCache.Add(key, th)
			return th, nil
		}
		made, err := s.generate(gctx, m, []thumbnails.Spec{spec})
		if err != nil {
			return nil, err
		}
		return made[0], nil
	})
	if err != nil {
		return nil, err
	}
	return cachedThumbnail(v.(*storage.Thumbnail))
}

// ensureConfiguredSizes stores every configured size of m that is not stored
// yet, decoding the original once. Concurrent callers for one media (the
// background worker after an upload, and the client's first view) share one run.
func (s *Server) ensureConfiguredSizes(ctx context.Context, m *storage.Media) error {
	_, err, _ := s.thumbFlight.Do("sizes/"+m.Origin+"/"+m.MediaID, func() (any, error) {
		// Shared by every waiting request: it must not die with the first one.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), generateTimeout)
		defer cancel()
		stored, err := s.meta.Thumbnails(gctx, m.Origin, m.MediaID)
		if err != nil {
			return nil, err
		}
		var missing []thumbnails.Spec
		for _, spec := range s.sizes {
			if th := findThumbnail(stored, spec); th != nil {
				s.thumbCache.Add(thumbKey(m, spec), th)
			} else {
				missing = append(missing, spec)
			}
		}
		if len(missing) == 0 {
			return nil, nil
		}
		_, err = s.generate(gctx, m, missing)
		return nil, err
	})
	return err
}

// generate makes the thumbnails of m for specs, stores them and caches them.
// The result has one entry per spec: the stored thumbnail, or nil where the
// original should be served. At most cap(genSlots) originals are decoded at
// once, whatever the number of requests: each may take tens of megabytes.
func (s *Server) generate(ctx context.Context, m *storage.Media, specs []thumbnails.Spec) ([]*storage.Thumbnail, error) {
	select {
	case s.genSlots <- struct{}{}:
		defer func() { <-s.genSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	src, err := s.openBlob(ctx, m.DatastoreID, m.SHA256, m.Origin+"/"+m.MediaID)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	results, err := s.thumbs.GenerateAll(ctx, src, m.SizeBytes, specs)
	if err != nil {
		return nil, err
	}
	made := make([]*storage.Thumbnail, len(specs))
	for i, r := range results {
		if !errors.Is(r.Err, thumbnails.ErrUseOriginal) {
			if made[i], err = s.storeThumbnail(ctx, m, specs[i], r.Thumbnail); err != nil {
				return nil, err
			}
		}
		s.thumbCache.Add(thumbKey(m, specs[i]), made[i]) // nil: the original
	}
	return made, nil
}

// storeThumbnail writes gen's bytes and its row. If another process stored the
// same thumbnail first, its row is returned instead.
func (s *Server) storeThumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec, gen *thumbnails.Thumbnail) (*storage.Thumbnail, error) {
	sum, size, err := s.blobs[s.thumbStore].Put(ctx, bytes.NewReader(gen.Data))
	if err != nil {
		return nil, fmt.Errorf("store thumbnail: %w", err)
	}
	th := &storage.Thumbnail{
		Origin: m.Origin, MediaID: m.MediaID, Width: spec.Width, Height: spec.Height,
		Method: spec.Method, Animated: spec.Animated, ContentType: gen.ContentType,
		SHA256: sum, SizeBytes: size, DatastoreID: s.thumbStore, CreatedAt: time.Now(),
	}
	err = s.meta.CreateThumbnail(ctx, th)
	if errors.Is(err, storage.ErrExists) {
		stored, lerr := s.meta.Thumbnails(ctx, m.Origin, m.MediaID)
		if lerr != nil {
			return nil, lerr
		}
		if other := findThumbnail(stored, spec); other != nil {
			return other, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return th, nil
}

func thumbKey(m *storage.Media, spec thumbnails.Spec) string {
	return fmt.Sprintf("%s/%s/%dx%d/%s/%t", m.Origin, m.MediaID, spec.Width, spec.Height, spec.Method, spec.Animated)
}

// cachedThumbnail turns a cache entry into a result: nil means "the original".
func cachedThumbnail(th *storage.Thumbnail) (*storage.Thumbnail, error) {
	if th == nil {
		return nil, thumbnails.ErrUseOriginal
	}
	return th, nil
}

// findThumbnail returns the thumbnail made for spec, or nil.
func findThumbnail(all []storage.Thumbnail, spec thumbnails.Spec) *storage.Thumbnail {
	for i := range all {
		t := &all[i]
		if t.Width == spec.Width && t.Height == spec.Height && t.Method == spec.Method && t.Animated == spec.Animated {
			return t
		}
	}
	return nil
}

// configuredSize reports whether spec is one of the sizes made after uploads.
func (s *Server) configuredSize(spec thumbnails.Spec) bool {
	for _, c := range s.sizes {
		if c == spec {
			return true
		}
	}
	return false
}

// configuredSizes expands thumbnails.sizes into specs (an empty method means
// both), animated as thumbnails.defaultAnimated asks.
func configuredSizes(cfg config.Thumbnails) []thumbnails.Spec {
	var specs []thumbnails.Spec
	for _, size := range cfg.Sizes {
		for _, method := range []string{config.MethodCrop, config.MethodScale} {
			if size.Method == "" || size.Method == method {
				specs = append(specs, thumbnails.Spec{Width: size.Width, Height: size.Height, Method: method, Animated: cfg.DefaultAnimated})
			}
		}
	}
	return specs
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
	default:
		return "png"
	}
}

// pregenerator makes the configured sizes of new uploads in the background,
// with a bounded number of workers and a bounded queue: when it is full, an
// upload's thumbnails are simply made on first request instead.
type pregenerator struct {
	jobs chan *storage.Media
}

const pregenQueue = 1024

func (s *Server) startPregenerator(ctx context.Context) {
	s.pregen = &pregenerator{jobs: make(chan *storage.Media, pregenQueue)}
	for range s.cfg.Thumbnails.NumWorkers {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-s.pregen.jobs:
					s.pregenerate(ctx, m)
				}
			}
		}()
	}
}

// queueThumbnails asks for m's configured sizes to be made in the background.
func (s *Server) queueThumbnails(ctx context.Context, m *storage.Media) {
	select {
	case s.pregen.jobs <- m:
	default:
		logFrom(ctx).WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID}).Debug("thumbnail queue full")
	}
}

func (s *Server) pregenerate(ctx context.Context, m *storage.Media) {
	err := s.ensureConfiguredSizes(ctx, m)
	if err != nil && !errors.Is(err, thumbnails.ErrUnsupported) {
		s.log.WithError(err).WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID}).Debug("thumbnails not pre-generated")
	}
}

// Close stops the background work (thumbnail workers, upload watcher,
// reservation sweeper) and waits for it.
func (s *Server) Close() error {
	s.stopBackground()
	s.background.Wait()
	return nil
}
