package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
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
	q := r.URL.Query()
	width, err := positiveParam(q, "width")
	if err != nil {
		return err
	}
	height, err := positiveParam(q, "height")
	if err != nil {
		return err
	}
	method := q.Get("method")
	if method != "" && method != config.MethodScale && method != config.MethodCrop {
		return errInvalidParam("method must be scale or crop")
	}
	animated, err := animatedParam(q, s.cfg.Thumbnails.DefaultAnimated)
	if err != nil {
		return err
	}
	if err := checkDownloadParams(r); err != nil {
		return err
	}
	m, err := s.requestedMedia(r, authenticated)
	if err != nil {
		return err
	}

	spec := thumbnails.Choose(s.cfg.Thumbnails, width, height, method, animated)
	th, err := s.thumbnailOf(r.Context(), m, spec)
	if errors.Is(err, thumbnails.ErrUseOriginal) {
		return s.serveOriginal(w, r, m, m.UploadName, authenticated)
	}
	if err != nil {
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

// thumbnailOf returns the stored thumbnail of m for spec, generating and
// storing it first if needed. Concurrent calls for one thumbnail generate it
// once; a second process that stored it first wins, and its row is used.
func (s *Server) thumbnailOf(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	key := fmt.Sprintf("%s/%s/%dx%d/%s/%t", m.Origin, m.MediaID, spec.Width, spec.Height, spec.Method, spec.Animated)
	if th, ok := s.thumbCache.Get(key); ok {
		if th == nil {
			return nil, thumbnails.ErrUseOriginal
		}
		return th, nil
	}
	v, err, _ := s.thumbFlight.Do(key, func() (any, error) {
		// Shared by every waiting request: it must not die with the first one.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), generateTimeout)
		defer cancel()
		th, err := s.storedThumbnail(gctx, m, spec)
		if err == nil && th == nil {
			th, err = s.generateThumbnail(gctx, m, spec)
		}
		switch {
		case errors.Is(err, thumbnails.ErrUseOriginal):
			s.thumbCache.Add(key, nil)
		case err == nil:
			s.thumbCache.Add(key, th)
		}
		return th, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*storage.Thumbnail), nil
}

// storedThumbnail finds the thumbnail made for spec, or returns nil, nil.
func (s *Server) storedThumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	all, err := s.meta.Thumbnails(ctx, m.Origin, m.MediaID)
	if err != nil {
		return nil, err
	}
	for i := range all {
		t := &all[i]
		if t.Width == spec.Width && t.Height == spec.Height && t.Method == spec.Method && t.Animated == spec.Animated {
			return t, nil
		}
	}
	return nil, nil
}

func (s *Server) generateThumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	src, err := s.openBlob(ctx, m.DatastoreID, m.SHA256, m.Origin+"/"+m.MediaID)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	gen, err := s.thumbs.Generate(ctx, src, m.SizeBytes, spec)
	if err != nil {
		return nil, err
	}
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
		// Another process stored it meanwhile; serve theirs.
		if stored, err := s.storedThumbnail(ctx, m, spec); err != nil || stored != nil {
			return stored, err
		}
		return nil, fmt.Errorf("thumbnail of %s/%s exists but cannot be found: %w", m.Origin, m.MediaID, err)
	}
	if err != nil {
		return nil, err
	}
	return th, nil
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
	jobs   chan *storage.Media
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const pregenQueue = 1024

func (s *Server) startPregenerator() {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pregenerator{jobs: make(chan *storage.Media, pregenQueue), cancel: cancel}
	for range s.cfg.Thumbnails.NumWorkers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-p.jobs:
					s.pregenerate(ctx, m)
				}
			}
		}()
	}
	s.pregen = p
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
	log := s.log.WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID})
	for _, size := range s.cfg.Thumbnails.Sizes {
		for _, method := range []string{config.MethodCrop, config.MethodScale} {
			if size.Method != "" && size.Method != method {
				continue
			}
			spec := thumbnails.Spec{Width: size.Width, Height: size.Height, Method: method, Animated: s.cfg.Thumbnails.DefaultAnimated}
			_, err := s.thumbnailOf(ctx, m, spec)
			switch {
			case err == nil, errors.Is(err, thumbnails.ErrUseOriginal):
			case errors.Is(err, thumbnails.ErrUnsupported):
				return // not an image: nothing to make
			default:
				log.WithError(err).WithFields(logrus.Fields{"width": size.Width, "height": size.Height}).Debug("thumbnail not pre-generated")
				return
			}
		}
	}
}

// Close stops the background thumbnail workers and waits for them.
func (s *Server) Close() error {
	s.pregen.cancel()
	s.pregen.wg.Wait()
	return nil
}
