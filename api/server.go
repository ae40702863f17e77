// Package api is the HTTP edge: routing, host selection, authentication,
// request parsing, the Matrix error format and serving media bytes. Each
// handler parses, calls a service (media, thumbnailer, preview) and responds;
// nothing here owns a cache, a worker or a goroutine. It never imports a
// storage implementation.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/console"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/thumbnailer"
	"github.com/mediarepo/mediarepo/thumbnails"
)

// Options are the Server's dependencies.
type Options struct {
	Config *config.Config
	// Live, if set, is the config in force, which a reload swaps; Config is
	// then only its first value.
	Live       *config.Live
	Media      *media.Service
	Thumbnails *thumbnailer.Service
	Auth       homeserver.Authenticator
	Log        *logrus.Logger
	// Limits applies rate limits; nil turns rate limiting off.
	Limits *ratelimit.Limits
	// Previews answers /preview_url; nil turns it off.
	Previews *preview.Service
	// Federation verifies other servers' requests; nil turns the federation
	// routes off.
	Federation *federation.Client
	// Admin answers the admin API (matrix-media-repo's and Synapse's); nil
	// turns it off.
	Admin *admin.Service
	// Console is the operator console, served under console.Prefix; nil
	// turns it off.
	Console *console.Console
	// Placeholder is served for quarantined media where the config asks;
	// nil answers 404 instead.
	Placeholder *thumbnails.Placeholder
	// Logout relays logouts to the homeserver; nil leaves the logout routes
	// to the proxy's other routes.
	Logout homeserver.Logouter
	// Bus tells every process of logouts. Required with Logout.
	Bus *bus.Bus
	// Metrics counts requests; nil counts nothing.
	Metrics RequestMetrics
	// Ready reports whether the stores can be used, for /readyz; nil
	// reports ready.
	Ready func(context.Context) (map[string]string, bool)
}

// RequestMetrics records answered requests.
type RequestMetrics interface {
	Request(route, method string, status int, seconds float64, bytesIn, bytesOut int64)
}

// Server serves every media route. It is an http.Handler and holds no state
// of its own but when it last logged a storage outage: caches, workers and
// shared work belong to the services.
type Server struct {
	live       *config.Live
	media      *media.Service
	thumbs     *thumbnailer.Service
	auth       homeserver.Authenticator
	log        *logrus.Logger
	limits     *ratelimit.Limits  // nil: no rate limits
	previews   *preview.Service   // nil: previews off
	federation *federation.Client // nil: no federation routes
	ops        operations
	outages    outageLog
	handler    http.Handler
}

// operations are the parts that serve operators, each optional.
type operations struct {
	admin   *admin.Service          // nil: no admin API
	console *console.Console        // nil: no operator console
	blocked *thumbnails.Placeholder // nil: quarantined media is a 404
	logout  homeserver.Logouter     // nil: no logout routes
	bus     *bus.Bus
	metrics RequestMetrics // nil: none
	ready   func(context.Context) (map[string]string, bool)
}

// New checks opts and builds the Server.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Media == nil || opts.Thumbnails == nil || opts.Auth == nil || opts.Log == nil {
		return nil, errors.New("api.New: Config, Media, Thumbnails, Auth and Log are required")
	}
	if opts.Live == nil {
		opts.Live = config.NewLive(opts.Config)
	}
	s := &Server{
		live: opts.Live, media: opts.Media, thumbs: opts.Thumbnails, auth: opts.Auth, log: opts.Log,
		limits: opts.Limits, previews: opts.Previews, federation: opts.Federation,
		ops: operations{
			admin: opts.Admin, console: opts.Console, blocked: opts.Placeholder, logout: opts.Logout, bus: opts.Bus,
			metrics: opts.Metrics, ready: opts.Ready,
		},
	}
	if s.ops.logout != nil && s.ops.bus == nil {
		return nil, errors.New("api.New: Bus is required with Logout")
	}
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
		switch r.URL.Path {
		case "/healthz":
			handleHealth(w, r)
			return
		case "/readyz":
			s.handleReady(w, r)
			return
		}
		hosted.ServeHTTP(w, r)
	})
	s.handler = s.withRequestLog(s.withRecover(withCORS(top)))
	return s, nil
}

// conf is the config in force.
func (s *Server) conf() *config.Config { return s.live.Get() }

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

// handleReady serves /readyz: 200 while the database and datastores can be
// used, 503 with what cannot otherwise.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ServeReady(w, r, s.ops.ready)
}

// ServeReady answers a readiness check with ready's report.
func ServeReady(w http.ResponseWriter, r *http.Request, ready func(context.Context) (map[string]string, bool)) {
	if ready == nil {
		writeJSON(w, http.StatusOK, map[string]string{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	report, ok := ready(ctx)
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, report)
}

func handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
