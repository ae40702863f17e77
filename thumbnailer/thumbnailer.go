// Package thumbnailer is the thumbnail lifecycle: it finds a media's stored
// thumbnail for a size, or makes it with a thumbnails.Generator (once, however
// many requests ask at the same moment), stores its bytes and row, and makes
// the sizes clients ask for first right after an upload. The configured sizes
// of a media are made in a batch from one decode, the size a request waits
// for first (batch.go). The image work itself is the thumbnails package's. It
// imports thumbnails, storage and config, and owns its worker and batch
// goroutines until Close.
package thumbnailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // small originals, read as they are
	_ "image/jpeg"
	_ "image/png"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/buckket/go-blurhash"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/flight"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

const (
	// generateTimeout bounds one generation, which outlives the request that
	// started it when other requests wait for the same result.
	generateTimeout = 60 * time.Second
	// cacheEntries bounds the in-process cache of thumbnail rows.
	cacheEntries = 50_000
	// queueLength bounds the uploads waiting for background generation: when
	// it is full, an upload's thumbnails are made on first request instead.
	queueLength = 1024
	// unusableTTL is how long an original that cannot be thumbnailed (not an
	// image, malformed, too large) answers so without being read again.
	// Media is immutable, but a read error can look like a malformed image.
	unusableTTL = 10 * time.Minute
)

// unusable is a remembered refusal of an original.
type unusable struct {
	err   error
	until time.Time
}

// Options are the service's dependencies.
type Options struct {
	Config     config.Thumbnails
	Thumbnails storage.ThumbnailStore
	Blobs      *storage.Datastores
	Generator  *thumbnails.Generator
	Log        *logrus.Entry
	// Observer counts cache lookups and thumbnails made; nil counts nothing.
	Observer Observer
	// Locker makes one process at a time generate a media's thumbnails, so
	// several instances make each once; nil is this process only.
	Locker storage.Locker
}

// Observer is told of thumbnail cache lookups and of thumbnails made.
type Observer interface {
	Cache(name string, hit bool)
	ThumbnailMade(seconds float64)
}

type noObserver struct{}

func (noObserver) Cache(string, bool)    {}
func (noObserver) ThumbnailMade(float64) {}

// Service makes, stores and finds thumbnails. Its methods are safe for
// concurrent use.
type Service struct {
	cfg    config.Thumbnails
	store  storage.ThumbnailStore
	blobs  *storage.Datastores
	gen    *thumbnails.Generator
	log    *logrus.Entry
	sizes  []thumbnails.Spec                      // the configured sizes, made in batches
	pregen []thumbnails.Spec                      // those made after uploads
	cache  *lru.Cache[string, *storage.Thumbnail] // nil value: serve the original
	bad    *lru.Cache[string, unusable]           // originals that cannot be thumbnailed
	flight *flight.Group[*storage.Thumbnail]      // dynamic sizes, made alone
	jobs   chan *storage.Media
	seen   Observer
	locks  storage.Locker

	running batches         // by media
	life    context.Context // the service's: batches run under it
	stop    context.CancelFunc
	runners sync.WaitGroup // batch goroutines
	workers sync.WaitGroup
}

// New checks opts and starts thumbnails.numWorkers background workers;
// Close stops them.
func New(opts Options) (*Service, error) {
	if opts.Thumbnails == nil || opts.Blobs == nil || opts.Generator == nil || opts.Log == nil {
		return nil, errors.New("thumbnailer.New: Thumbnails, Blobs, Generator and Log are required")
	}
	s := &Service{
		cfg: opts.Config, store: opts.Thumbnails, blobs: opts.Blobs, gen: opts.Generator, log: opts.Log,
		sizes: configuredSizes(opts.Config), pregen: pregenerated(opts.Config), seen: opts.Observer, locks: opts.Locker,
		jobs:    make(chan *storage.Media, queueLength),
		running: batches{m: map[string]*batch{}},
	}
	if s.seen == nil {
		s.seen = noObserver{}
	}
	if s.locks == nil {
		s.locks = storage.NoLocker{}
	}
	s.flight = flight.New[*storage.Thumbnail](generateTimeout)
	s.cache, _ = lru.New[string, *storage.Thumbnail](cacheEntries)
	s.bad, _ = lru.New[string, unusable](cacheEntries)
	s.life, s.stop = context.WithCancel(context.Background())
	for range opts.Config.NumWorkers {
		s.workers.Add(1)
		go s.work(s.life)
	}
	return s, nil
}

// Close stops the background workers and cancels generation under way, and
// waits for them all: a decode in progress stops at its next read.
func (s *Service) Close() error {
	s.stop()
	s.flight.Close()
	s.workers.Wait()
	s.runners.Wait()
	return nil
}

// Spec turns a client's request (a w x h box, a method, animated or not,
// whether it accepts WebP) into the size and kind to serve, as
// thumbnails.Choose does with this service's config.
func (s *Service) Spec(w, h int, method string, animated, acceptsWebP bool) thumbnails.Spec {
	spec := thumbnails.Choose(s.cfg, w, h, method, animated)
	spec.WebP = acceptsWebP && s.cfg.PreferWebP
	return spec
}

// VariesByAccept reports whether a thumbnail's type depends on the
// request's Accept header.
func (s *Service) VariesByAccept() bool { return s.cfg.PreferWebP }

// Thumbnail returns the stored thumbnail of m for spec, generating and
// storing it first if needed, or thumbnails.ErrUseOriginal when the original
// is to be served. A configured size is made first in its media's batch, which
// then makes the pre-generated sizes from the same decode; any other size
// alone. Concurrent calls share the work; a thumbnail another process stored
// first is used as it is.
func (s *Service) Thumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec) (*storage.Thumbnail, error) {
	key := cacheKey(m, spec)
	if th, ok := s.cache.Get(key); ok {
		s.seen.Cache("thumbnails", true)
		return cached(th)
	}
	s.seen.Cache("thumbnails", false)
	mediaKey := m.Origin + "/" + m.MediaID
	if u, ok := s.bad.Get(mediaKey); ok && time.Now().Before(u.until) {
		return nil, u.err
	}
	th, err := s.thumbnail(ctx, m, spec, key)
	if sourceError(err) {
		s.bad.Add(mediaKey, unusable{err: err, until: time.Now().Add(unusableTTL)})
	}
	return th, err
}

// sourceError reports whether err is about the original itself, the same
// every time it is read.
func sourceError(err error) bool {
	return errors.Is(err, thumbnails.ErrUnsupported) || errors.Is(err, thumbnails.ErrCorrupt) ||
		errors.Is(err, thumbnails.ErrTooManyPixels) || errors.Is(err, thumbnails.ErrTooLarge)
}

// thumbnail is Thumbnail past the caches.
func (s *Service) thumbnail(ctx context.Context, m *storage.Media, spec thumbnails.Spec, key string) (*storage.Thumbnail, error) {
	if slices.Contains(s.sizes, spec) {
		return s.configured(ctx, m, spec)
	}
	th, err := s.flight.Do(ctx, key, func(ctx context.Context) (*storage.Thumbnail, error) {
		unlock, err := s.locks.Lock(ctx, lockKey(m))
		if err != nil {
			return nil, err
		}
		defer unlock()
		stored, err := s.store.Thumbnails(ctx, m.Origin, m.MediaID)
		if err != nil {
			return nil, err
		}
		if th := find(stored, spec); th != nil {
			s.cache.Add(key, th)
			return th, nil
		}
		made, err := s.generate(ctx, m, []thumbnails.Spec{spec})
		if err != nil {
			return nil, err
		}
		return made[0], nil
	})
	if err != nil {
		return nil, err
	}
	return cached(th)
}

// Blurhash is the MSC2448 blurhash of image m, computed from a thumbnail
// of cfg.ThumbWidth x cfg.ThumbHeight made with the same decoders, limits
// and decode budget as every thumbnail (an image already that small is
// read as it is).
func (s *Service) Blurhash(ctx context.Context, m *storage.Media, cfg config.MSC2448) (string, error) {
	src, err := s.blobs.Open(ctx, m.DatastoreID, m.SHA256)
	if err != nil {
		return "", fmt.Errorf("original of %s/%s: %w", m.Origin, m.MediaID, err)
	}
	defer src.Close()
	spec := thumbnails.Spec{Width: min(cfg.ThumbWidth, cfg.MaxWidth), Height: min(cfg.ThumbHeight, cfg.MaxHeight), Method: config.MethodScale}
	th, err := s.gen.Generate(ctx, src, m.SizeBytes, spec)
	var small io.Reader
	switch {
	case errors.Is(err, thumbnails.ErrUseOriginal):
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		small = src
	case err != nil:
		return "", err
	default:
		small = bytes.NewReader(th.Data)
	}
	img, _, err := image.Decode(small)
	if err != nil {
		return "", fmt.Errorf("decode the small image: %w", err)
	}
	return blurhash.Encode(cfg.XComponents, cfg.YComponents, img)
}

// Stored lists the thumbnails stored of m.
func (s *Service) Stored(ctx context.Context, m *storage.Media) ([]storage.Thumbnail, error) {
	return s.store.Thumbnails(ctx, m.Origin, m.MediaID)
}

// Dimensions reads m's width and height from its header, if m is an image
// of a type that is thumbnailed.
func (s *Service) Dimensions(ctx context.Context, m *storage.Media) (width, height int, ok bool) {
	blob, err := s.blobs.Open(ctx, m.DatastoreID, m.SHA256)
	if err != nil {
		return 0, 0, false
	}
	defer blob.Close()
	w, h, err := thumbnails.Dimensions(blob)
	return w, h, err == nil
}

// Forget drops the cached thumbnails of every media: some were removed
// (a purge, thumbnail expiry).
func (s *Service) Forget() {
	s.cache.Purge()
	s.bad.Purge()
}

// Open opens the bytes of th; the caller closes them.
func (s *Service) Open(ctx context.Context, th *storage.Thumbnail) (io.ReadSeekCloser, error) {
	blob, err := s.blobs.Open(ctx, th.DatastoreID, th.SHA256)
	if errors.Is(err, storage.ErrNotFound) {
		// The row may have moved to another datastore (a transfer) since it
		// was cached: look again, past the cache.
		if stored, lerr := s.store.Thumbnails(ctx, th.Origin, th.MediaID); lerr == nil {
			for _, now := range stored {
				if now.SHA256 == th.SHA256 && now.DatastoreID != th.DatastoreID {
					s.Forget()
					blob, err = s.blobs.Open(ctx, now.DatastoreID, now.SHA256)
					break
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("thumbnail of %s/%s: %w", th.Origin, th.MediaID, err)
	}
	return blob, nil
}

// generate makes the thumbnails of m for specs, stores them and caches them.
// The result has one entry per spec: the stored thumbnail, or nil where the
// original should be served. The generator bounds the decodes in flight.
func (s *Service) generate(ctx context.Context, m *storage.Media, specs []thumbnails.Spec) ([]*storage.Thumbnail, error) {
	src, err := s.blobs.Open(ctx, m.DatastoreID, m.SHA256)
	if err != nil {
		return nil, fmt.Errorf("original of %s/%s: %w", m.Origin, m.MediaID, err)
	}
	defer src.Close()
	results, err := s.gen.GenerateAll(ctx, src, m.SizeBytes, specs)
	if err != nil {
		return nil, err
	}
	made := make([]*storage.Thumbnail, len(specs))
	for i, r := range results {
		if !errors.Is(r.Err, thumbnails.ErrUseOriginal) {
			if made[i], err = s.save(ctx, m, specs[i], r.Thumbnail); err != nil {
				return nil, err
			}
		}
		s.cache.Add(cacheKey(m, specs[i]), made[i]) // nil: the original
	}
	return made, nil
}

// save writes gen's bytes and its row; the bytes are published with the
// row, so a purge of the same bytes meanwhile cannot take them. If another
// process stored the same thumbnail first, its row is returned instead.
func (s *Service) save(ctx context.Context, m *storage.Media, spec thumbnails.Spec, gen *thumbnails.Thumbnail) (*storage.Thumbnail, error) {
	id := s.blobs.Roles().Thumbnails
	staged, err := s.blobs.Stage(ctx, id, bytes.NewReader(gen.Data))
	if err != nil {
		return nil, fmt.Errorf("store thumbnail: %w", err)
	}
	defer staged.Abort()
	th := &storage.Thumbnail{
		Origin: m.Origin, MediaID: m.MediaID, Width: spec.Width, Height: spec.Height,
		Method: spec.Method, Animated: spec.Animated, ContentType: gen.ContentType,
		SHA256: staged.SHA256(), SizeBytes: staged.Size(), DatastoreID: id, CreatedAt: time.Now(),
	}
	err = s.store.CreateThumbnail(ctx, th, staged.Commit)
	if errors.Is(err, storage.ErrExists) {
		stored, lerr := s.store.Thumbnails(ctx, m.Origin, m.MediaID)
		if lerr != nil {
			return nil, lerr
		}
		if other := findType(stored, spec, gen.ContentType); other != nil {
			return other, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return th, nil
}

// Queued is how many uploads wait for their thumbnails to be made.
func (s *Service) Queued() int { return len(s.jobs) }

// Pregenerate asks for m's pre-generated sizes to be made in the background.
// When the queue is full they are made on first request instead.
func (s *Service) Pregenerate(m *storage.Media) {
	select {
	case s.jobs <- m:
	default:
		s.log.WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID}).Debug("thumbnail queue full")
	}
}

// work makes the pre-generated sizes of queued media until ctx is done.
func (s *Service) work(ctx context.Context) {
	defer s.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.jobs:
			if ctx.Err() != nil {
				return // closed while both were ready: start nothing new
			}
			err := s.pregenerate(ctx, m)
			if err != nil && !errors.Is(err, thumbnails.ErrUnsupported) && ctx.Err() == nil {
				s.log.WithError(err).WithFields(logrus.Fields{"origin": m.Origin, "media_id": m.MediaID}).Debug("thumbnails not pre-generated")
			}
		}
	}
}

// lockKey is what every process locks to make m's thumbnails, and then
// looks again at what is stored: a media's sizes are made by one at a time.
func lockKey(m *storage.Media) string { return "thumbnails:" + m.Origin + "/" + m.MediaID }

func cacheKey(m *storage.Media, spec thumbnails.Spec) string {
	return fmt.Sprintf("%s/%s/%dx%d/%s/%t/%t", m.Origin, m.MediaID, spec.Width, spec.Height, spec.Method, spec.Animated, spec.WebP)
}

// cached turns a cache entry into a result: nil means "the original".
func cached(th *storage.Thumbnail) (*storage.Thumbnail, error) {
	if th == nil {
		return nil, thumbnails.ErrUseOriginal
	}
	return th, nil
}

// find returns the thumbnail made for spec, or nil: a WebP one for a spec
// allowing WebP, any other kind for one that does not. (An animated
// thumbnail for a spec allowing WebP is a GIF when that was smaller: it is
// stored as the GIF of the same size, and found again only by making it.)
func find(all []storage.Thumbnail, spec thumbnails.Spec) *storage.Thumbnail {
	for i := range all {
		t := &all[i]
		if sameSize(t, spec) && (t.ContentType == "image/webp") == spec.WebP {
			return t
		}
	}
	return nil
}

// findType returns the thumbnail of spec's size of type contentType, or nil.
func findType(all []storage.Thumbnail, spec thumbnails.Spec, contentType string) *storage.Thumbnail {
	for i := range all {
		if t := &all[i]; sameSize(t, spec) && t.ContentType == contentType {
			return t
		}
	}
	return nil
}

func sameSize(t *storage.Thumbnail, spec thumbnails.Spec) bool {
	return t.Width == spec.Width && t.Height == spec.Height && t.Method == spec.Method && t.Animated == spec.Animated
}

// withWebP adds, when thumbnails.preferWebp is set, the WebP kind of each
// spec after it.
func withWebP(cfg config.Thumbnails, specs []thumbnails.Spec) []thumbnails.Spec {
	if !cfg.PreferWebP {
		return specs
	}
	out := make([]thumbnails.Spec, 0, 2*len(specs))
	for _, spec := range specs {
		webp := spec
		webp.WebP = true
		out = append(out, spec, webp)
	}
	return out
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
	return withWebP(cfg, specs)
}

// pregenerated is the configured size serving each of thumbnails.pregenerate
// (an empty method meaning both), once each.
func pregenerated(cfg config.Thumbnails) []thumbnails.Spec {
	var specs []thumbnails.Spec
	for _, req := range cfg.Pregenerate {
		for _, method := range []string{config.MethodCrop, config.MethodScale} {
			if req.Method != "" && req.Method != method {
				continue
			}
			size := thumbnails.Pick(cfg.Sizes, req.Width, req.Height, method)
			spec := thumbnails.Spec{Width: size.Width, Height: size.Height, Method: size.Method, Animated: cfg.DefaultAnimated}
			if !slices.Contains(specs, spec) {
				specs = append(specs, spec)
			}
		}
	}
	return withWebP(cfg, specs)
}
