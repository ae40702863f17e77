// Package api is the HTTP edge: routing, host selection, authentication, the
// Matrix error format and serving media bytes. It depends on the storage and
// homeserver interfaces, never on an implementation.
package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/mux"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// mediaCacheEntries bounds the in-process cache of media rows. Rows are
// immutable, so the cache needs no invalidation until deletion arrives.
const mediaCacheEntries = 50_000

// Options are the Server's dependencies.
type Options struct {
	Config *config.Config
	Meta   storage.MetadataStore
	// Blobs maps each configured datastore ID to its store.
	Blobs  map[string]storage.BlobStore
	Auth   homeserver.Authenticator
	Thumbs *thumbnails.Generator
	Log    *logrus.Logger
	// Limiter keeps rate-limit buckets; nil turns rate limiting off.
	Limiter ratelimit.Limiter
	// Previews makes URL previews; nil turns /preview_url off.
	Previews *preview.Fetcher
	// Federation fetches remote media; nil serves local media only.
	Federation *federation.Client
	// UploadRecheck is how often a download waiting for an async upload looks
	// again when no notification arrives; 0 means one second.
	UploadRecheck time.Duration
}

// Server serves every media route. It is an http.Handler.
type Server struct {
	cfg            *config.Config
	meta           storage.MetadataStore
	blobs          map[string]storage.BlobStore
	auth           homeserver.Authenticator
	thumbs         *thumbnails.Generator
	limiter        ratelimit.Limiter // nil: no rate limits
	previews       *preview.Fetcher  // nil: previews off
	previewFlight  singleflight.Group
	previewSlots   chan struct{}      // bounds previews fetched at once
	federation     *federation.Client // nil: no remote media
	remoteStore    string             // datastore ID remote media goes to
	remoteFlight   singleflight.Group
	remoteFailures *lru.Cache[string, remoteFailure]
	log            *logrus.Logger
	localStore     string // datastore ID new uploads go to
	thumbStore     string // datastore ID thumbnails go to
	mediaCache     *lru.Cache[string, *storage.Media]
	thumbCache     *lru.Cache[string, *storage.Thumbnail] // nil value: serve the original
	thumbFlight    singleflight.Group
	sizes          []thumbnails.Spec // the configured sizes, made after uploads
	genSlots       chan struct{}     // bounds concurrent thumbnail generation
	pregen         *pregenerator
	waiters        uploadWaiters
	recheck        time.Duration
	handler        http.Handler

	stopBackground context.CancelFunc
	background     sync.WaitGroup
}

// New checks opts and builds the Server. It starts the background work
// (thumbnail workers, upload watcher, reservation sweeper); Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Meta == nil || opts.Auth == nil || opts.Thumbs == nil || opts.Log == nil || len(opts.Blobs) == 0 {
		return nil, errors.New("api.New: Config, Meta, Blobs, Auth, Thumbs and Log are required")
	}
	s := &Server{cfg: opts.Config, meta: opts.Meta, blobs: opts.Blobs, auth: opts.Auth, thumbs: opts.Thumbs, limiter: opts.Limiter, previews: opts.Previews, federation: opts.Federation, log: opts.Log}
	for _, ds := range s.cfg.Datastores {
		if _, ok := s.blobs[ds.ID]; !ok {
			return nil, fmt.Errorf("api.New: no blob store for datastore %q", ds.ID)
		}
		if s.localStore == "" && ds.For(config.KindLocalMedia) {
			s.localStore = ds.ID
		}
		if s.thumbStore == "" && ds.For(config.KindThumbnails) {
			s.thumbStore = ds.ID
		}
		if s.remoteStore == "" && ds.For(config.KindRemoteMedia) {
			s.remoteStore = ds.ID
		}
	}
	if s.localStore == "" {
		return nil, errors.New("api.New: no datastore takes local_media")
	}
	if s.thumbStore == "" {
		s.thumbStore = s.localStore
	}
	if s.remoteStore == "" {
		s.remoteStore = s.localStore
	}
	s.mediaCache, _ = lru.New[string, *storage.Media](mediaCacheEntries)
	s.thumbCache, _ = lru.New[string, *storage.Thumbnail](mediaCacheEntries)
	s.remoteFailures, _ = lru.New[string, remoteFailure](mediaCacheEntries)
	s.sizes = configuredSizes(s.cfg.Thumbnails)
	s.recheck = cmp.Or(opts.UploadRecheck, time.Second)
	s.previewSlots = make(chan struct{}, max(1, s.cfg.URLPreviews.NumWorkers))
	s.genSlots = make(chan struct{}, max(s.cfg.Thumbnails.NumWorkers, runtime.NumCPU()))

	router := mux.NewRouter().UseEncodedPath().SkipClean(true)
	router.NotFoundHandler = s.handle(func(http.ResponseWriter, *http.Request) error {
		return errUnrecognized(http.StatusNotFound)
	})
	router.MethodNotAllowedHandler = s.handle(func(http.ResponseWriter, *http.Request) error {
		return errUnrecognized(http.StatusMethodNotAllowed)
	})
	s.routes(router)

	// Not an http.ServeMux: it would redirect unclean paths instead of refusing them.
	hosted := s.requireHost(s.withRateLimit(router))
	top := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			handleHealth(w, r)
			return
		}
		hosted.ServeHTTP(w, r)
	})
	s.handler = s.withRequestLog(s.withRecover(withCORS(top)))
	s.startBackground()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// handlerFunc is the shape of every endpoint: it writes a success itself and
// returns any failure for handle to turn into a Matrix error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts fn to http.Handler; the returned error is written once, here,
// and logged once, in the access line.
func (s *Server) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail writes err as a Matrix error and records it for the access line. A
// client that hung up gets nothing.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		st.aborted = true
		return
	}
	me := matrixError(err)
	st.err = me
	writeError(w, r, me)
}

func handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
