package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/admin"
	"github.com/mediarepo/mediarepo/antivirus"
	"github.com/mediarepo/mediarepo/api"
	"github.com/mediarepo/mediarepo/archive"
	"github.com/mediarepo/mediarepo/bus"
	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/console"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/homeserver"
	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/metrics"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/ratelimit/memlimit"
	"github.com/mediarepo/mediarepo/ratelimit/redislimit"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/postgres"
	"github.com/mediarepo/mediarepo/storage/s3"
	"github.com/mediarepo/mediarepo/storage/sqlite"
	"github.com/mediarepo/mediarepo/storage/sqlstore"
	"github.com/mediarepo/mediarepo/tasks"
	"github.com/mediarepo/mediarepo/thumbnailer"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/ffmpeg"
	"github.com/mediarepo/mediarepo/transfer"
)

// handlerWait bounds how long Close waits for handlers to return once their
// connections have been closed at the end of the grace period.
const handlerWait = 10 * time.Second

// Main is the running program: stores, services, HTTP server and listener.
// It is the only place that names concrete implementations.
type Main struct {
	Config *config.Config // as it was at start-up
	Log    *logrus.Logger

	live    *config.Live          // the config in force, swapped by Reload
	db      *sqlstore.Store       // every metadata interface, on postgres or sqlite
	watcher storage.UploadWatcher // postgres only
	cast    storage.Broadcaster   // postgres only
	blobs   *storage.Datastores
	closers []io.Closer // services and other resources, closed in reverse order before the stores
	srv     *http.Server
	ln      net.Listener
	served  chan error
	metrics *metrics.Set
	mon     *http.Server // the metrics listener, if enabled
	monLn   net.Listener
	active  sync.WaitGroup // handlers running
}

// NewMain returns a Main for cfg that logs to log.
func NewMain(cfg *config.Config, log *logrus.Logger) *Main {
	return &Main{Config: cfg, Log: log, live: config.NewLive(cfg), served: make(chan error, 1)}
}

// Run opens the stores, applies migrations, builds the services, starts
// listening and serves in the background. It returns once requests can be
// accepted.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.closeAll()
		}
	}()
	for _, w := range m.Config.Warnings() {
		m.Log.Warn(w)
	}
	for _, n := range m.Config.Notices() {
		m.Log.Info(n)
	}
	if err := m.openMeta(ctx); err != nil {
		return err
	}
	if err := m.openBlobs(ctx); err != nil {
		return err
	}
	m.metrics = metrics.New()
	m.metrics.Database(m.db.DB(), "metadata")
	handler, err := m.services(ctx)
	if err != nil {
		return err
	}
	if err := m.listenMetrics(); err != nil {
		return err
	}
	addr := net.JoinHostPort(m.Config.Repo.BindAddress, strconv.Itoa(m.Config.Repo.Port))
	m.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	m.srv = &http.Server{
		Handler:           m.tracked(handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No read or write timeout: uploads and downloads may be large and slow.
	}
	go func() { m.served <- m.srv.Serve(m.ln) }()
	m.Log.WithField("addr", m.ln.Addr().String()).Info("listening")
	return nil
}

// tracked counts the handlers running, so Close can wait for the ones whose
// connections it had to close.
func (m *Main) tracked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.active.Add(1)
		defer m.active.Done()
		next.ServeHTTP(w, r)
	})
}

// openBlobs opens every datastore and assigns the roles forKinds gives them.
func (m *Main) openBlobs(ctx context.Context) error {
	byID := make(map[string]storage.BlobStore, len(m.Config.Datastores))
	for _, ds := range m.Config.Datastores {
		log := m.Log.WithFields(logrus.Fields{"datastore": ds.ID, "type": ds.Type, "for_kinds": ds.ForKinds})
		switch ds.Type {
		case "s3":
			o := ds.Opts
			s, err := s3.Open(ctx, s3.Options{
				Endpoint: o.Endpoint, AccessKeyID: o.AccessKeyID, AccessSecret: o.AccessSecret, SSL: o.UseSSL(),
				Bucket: o.BucketName, Region: o.Region, StorageClass: o.StorageClass, PrefixLength: o.PrefixLength,
				PublicBaseURL: o.PublicBaseURL, PresignSeconds: o.PresignedRedirectSeconds, TempPath: o.TempPath,
				Multipart: o.Multipart(),
			})
			if err != nil {
				return fmt.Errorf("datastore %s: %w", ds.ID, err)
			}
			log.WithFields(logrus.Fields{"endpoint": o.Endpoint, "bucket": o.BucketName}).Info("datastore ready")
			byID[ds.ID] = s
		default:
			s, err := disk.Open(ds.Opts.Path)
			if err != nil {
				return fmt.Errorf("datastore %s: %w", ds.ID, err)
			}
			log.WithField("path", s.Root()).Info("datastore ready")
			byID[ds.ID] = s
		}
	}
	var err error
	m.blobs, err = storage.NewDatastores(byID, storage.Roles{
		LocalMedia:  m.Config.DatastoreFor(config.KindLocalMedia),
		RemoteMedia: m.Config.DatastoreFor(config.KindRemoteMedia),
		Thumbnails:  m.Config.DatastoreFor(config.KindThumbnails),
	})
	return err
}

// services builds the application services and the HTTP edge over them.
func (m *Main) services(ctx context.Context) (http.Handler, error) {
	cfg := m.Config
	log := logrus.NewEntry(m.Log)
	hs := m.homeservers(log)
	limits, err := m.openLimits(ctx)
	if err != nil {
		return nil, err
	}
	fed, err := m.federationClient()
	if err != nil {
		return nil, err
	}
	m.closers = append(m.closers, fed)
	thumbs, err := thumbnailer.New(thumbnailer.Options{
		Config: cfg.Thumbnails, Thumbnails: m.db, Blobs: m.blobs, Generator: m.thumbnailGenerator(ctx, log), Log: log,
		Observer: m.metrics, Locker: m.db,
	})
	if err != nil {
		return nil, err
	}
	m.closers = append(m.closers, thumbs)
	m.metrics.Queue("thumbnail", "Uploads waiting for their thumbnails to be made.", thumbs.Queued)
	scanner, err := m.virusScanner(ctx, log)
	if err != nil {
		return nil, err
	}
	mediaSvc, err := media.New(media.Options{
		Config: media.Config{
			Uploads: cfg.Uploads, Downloads: cfg.Downloads, IgnoredHosts: cfg.Federation.IgnoredHosts,
			FetchTimeout: time.Duration(cfg.Timeouts.FederationTimeoutSeconds) * time.Second,
			Freeze:       cfg.Repo.FreezeUnauthenticatedMedia,
		},
		Media: m.db, Reservations: m.db, Blobs: m.blobs, Remote: fed, Watcher: m.watcher,
		Stored: thumbs.Pregenerate, Access: m.db, Observer: m.metrics, Log: log, Locker: m.db,
		Scanner: scanner, Blurhash: blurhasher(cfg.FeatureSupport.MSC2448, thumbs), Blurhashes: m.db,
	})
	if err != nil {
		return nil, err
	}
	m.closers = append(m.closers, mediaSvc)
	hs.events.Subscribe(bus.Media, func(key string) {
		origin, mediaID, _ := strings.Cut(key, "/")
		mediaSvc.Forget(origin, mediaID)
		thumbs.Forget()
	})
	ops, err := m.operations(hs, log)
	if err != nil {
		return nil, err
	}
	previews, err := m.previewService(mediaSvc, log)
	if err != nil {
		return nil, err
	}
	if previews != nil {
		m.closers = append(m.closers, previews)
	}
	var cons *console.Console
	if cfg.Console.Enabled {
		cons, err = console.New(console.Options{Admin: ops.admin, Thumbnails: thumbs, Originals: mediaSvc, Config: m.live.Get,
			Log: log.WithField("part", "console")})
		if err != nil {
			return nil, err
		}
		// A logout anywhere ends the console sessions of that token.
		hs.events.Subscribe(bus.Token, cons.ForgetToken)
		hs.events.Subscribe(bus.User, cons.ForgetUser)
	}
	return api.New(api.Options{
		Config: cfg, Live: m.live, Media: mediaSvc, Thumbnails: thumbs, Auth: hs.auth,
		Limits: limits, Previews: previews, Federation: fed, Log: m.Log,
		Admin: ops.admin, Placeholder: ops.placeholder, Logout: hs.client, Bus: hs.events,
		Metrics: m.metrics, Ready: m.ready, Console: cons,
	})
}

// blurhasher computes uploads' blurhashes with thumbs when MSC2448 is on.
func blurhasher(cfg config.MSC2448, thumbs *thumbnailer.Service) func(context.Context, *storage.Media) (string, error) {
	if !cfg.Enabled {
		return nil
	}
	return func(ctx context.Context, m *storage.Media) (string, error) { return thumbs.Blurhash(ctx, m, cfg) }
}

// thumbnailGenerator is the image pipeline, with ffmpeg for video and audio
// when thumbnails.types lists such types. A missing ffmpeg is said at
// start-up, not fatal: those types then get no thumbnail.
func (m *Main) thumbnailGenerator(ctx context.Context, log *logrus.Entry) *thumbnails.Generator {
	cfg := m.Config.Thumbnails
	av := thumbnails.AVTypes(cfg.Types)
	if len(av) == 0 {
		return thumbnails.New(cfg)
	}
	entry := log.WithFields(logrus.Fields{"types": av, "ffmpeg": cfg.FFmpeg.Path})
	runner, err := ffmpeg.New(cfg.FFmpeg)
	if err == nil {
		var version string
		if version, err = runner.Version(ctx); err == nil {
			entry.WithField("version", version).Info("video and audio thumbnails by ffmpeg")
			return thumbnails.New(cfg, thumbnails.WithAV(runner))
		}
	}
	entry.WithError(err).Warn("ffmpeg is not available: video and audio get no thumbnail (install ffmpeg or set thumbnails.ffmpeg.path)")
	return thumbnails.New(cfg)
}

// virusScanner is clamd's scanner if antivirus is enabled, else nil. An
// unreachable clamd is logged, not fatal: it may start after mediarepo.
func (m *Main) virusScanner(ctx context.Context, log *logrus.Entry) (media.Scanner, error) {
	av := m.Config.Antivirus
	if !av.Enabled {
		return nil, nil
	}
	entry := log.WithFields(logrus.Fields{"clamd": av.ClamdAddress, "fail_open": av.FailOpen})
	s, err := antivirus.New(antivirus.Options{
		Address: av.ClamdAddress, Timeout: time.Duration(av.TimeoutSeconds) * time.Second, FailOpen: av.FailOpen,
		Warn: func(err error) { entry.WithError(err).Warn("file let through unscanned (antivirus.failOpen)") },
	})
	if err != nil {
		return nil, fmt.Errorf("antivirus: %w", err)
	}
	ping, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(ping); err != nil {
		entry.WithError(err).Warn("clamd does not answer: uploads are refused until it does (or let through, with failOpen)")
	} else {
		entry.Info("virus scanning on")
	}
	return s, nil
}

// rescanner runs the admin API's virus rescans when antivirus is enabled,
// with a scanner of its own that never fails open: a stored file clamd
// cannot scan stops the rescan rather than passing.
func (m *Main) rescanner(hs homeserverParts, runner *tasks.Runner, log *logrus.Entry) (*antivirus.Rescanner, error) {
	av := m.Config.Antivirus
	if !av.Enabled {
		return nil, nil
	}
	s, err := antivirus.New(antivirus.Options{Address: av.ClamdAddress, Timeout: time.Duration(av.TimeoutSeconds) * time.Second})
	if err != nil {
		return nil, fmt.Errorf("antivirus: %w", err)
	}
	return &antivirus.Rescanner{
		Store: m.db, Blobs: m.blobs, Scanner: s, Log: log.WithField("task", antivirus.RescanTask), Tasks: runner,
		Changed: func() { hs.events.Publish(context.Background(), bus.Media, "") },
	}, nil
}

// homeserverParts are the homeserver calls and the caches of their answers,
// kept current across processes by the bus.
type homeserverParts struct {
	client *homeserver.Client
	auth   *homeserver.CachedAuthenticator
	admins *homeserver.CachedAdmins
	events *bus.Bus
}

// homeservers builds the homeserver client, its token and admin caches, and
// the bus that drops tokens from them on logout.
func (m *Main) homeservers(log *logrus.Entry) homeserverParts {
	cfg := m.Config
	client := homeserver.NewClient(time.Duration(cfg.Timeouts.ClientServerTimeoutSeconds) * time.Second)
	ttl := time.Duration(cfg.AccessTokens.MaxCacheTimeSeconds) * time.Second
	auth := homeserver.NewCachedAuthenticator(client, ttl,
		homeserver.ObserveCache(func(hit bool) { m.metrics.Cache("tokens", hit) }))
	admins := homeserver.NewCachedAdmins(client, ttl)
	events := bus.New(m.cast, log)
	m.closers = append(m.closers, auth, events)
	events.Subscribe(bus.Token, func(key string) { auth.Forget(key); admins.Forget(key) })
	events.Subscribe(bus.User, auth.ForgetUser)
	return homeserverParts{client: client, auth: auth, admins: admins, events: events}
}

// operationsParts are what serves operators: the admin API and the
// quarantine's replacement image.
type operationsParts struct {
	admin       *admin.Service
	placeholder *thumbnails.Placeholder
}

// operations builds the admin API, the replacement image of quarantined
// media, and the retention jobs.
func (m *Main) operations(hs homeserverParts, log *logrus.Entry) (operationsParts, error) {
	cfg := m.Config
	placeholder, err := thumbnails.NewPlaceholder(cfg.Quarantine.ThumbnailPath)
	if err != nil {
		return operationsParts{}, fmt.Errorf("quarantine.thumbnailPath: %w", err)
	}
	runner, err := tasks.New(tasks.Options{Tasks: m.db, Leases: m.db, Log: log})
	if err != nil {
		return operationsParts{}, err
	}
	m.closers = append(m.closers, runner)
	remover := &retention.Remover{Store: m.db, Blobs: m.blobs.ByID(), Log: log}
	archives, err := archive.New(archive.Options{
		Live: m.live, Blobs: m.blobs, Tasks: runner, Remover: remover, Bus: hs.events, Log: log,
		Datastore: cfg.DatastoreFor(config.KindArchives),
		Stores: archive.Stores{Catalog: m.db, Exports: m.db,
			Import: importer.Stores{Media: m.db, Thumbnails: m.db, Moderation: m.db, Access: m.db, Blobs: m.blobs}},
	})
	if err != nil {
		return operationsParts{}, err
	}
	transfers, err := transfer.NewService(transfer.ServiceOptions{
		Store: m.db, Blobs: m.blobs.ByID(), Tasks: runner, Log: log,
		Changed: func() { hs.events.Publish(context.Background(), bus.Media, "") },
	})
	if err != nil {
		return operationsParts{}, err
	}
	rescans, err := m.rescanner(hs, runner, log)
	if err != nil {
		return operationsParts{}, err
	}
	runner.Sweep()
	adminSvc, err := admin.New(admin.Options{
		Config: cfg, Live: m.live, Blobs: m.blobs, Bus: hs.events, Log: log, Observer: m.metrics, Archives: archives,
		Transfers: transfers, Rescans: rescans,
		Stores:      admin.Stores{Media: m.db, Catalog: m.db, Totals: m.db, Moderation: m.db, Purge: m.db, Tasks: m.db},
		Homeservers: homeserverCalls{admins: hs.admins, Client: hs.client},
	})
	if err != nil {
		return operationsParts{}, err
	}
	ret, err := retention.New(retention.Options{
		Config: cfg, Blobs: m.blobs.ByID(), Bus: hs.events, Log: log, Purged: m.metrics.Purged,
		Stores: retention.Stores{Refs: m.db, Catalog: m.db, Purge: m.db, Reservations: m.db, Previews: m.db, Leases: m.db},
	})
	if err != nil {
		return operationsParts{}, err
	}
	m.closers = append(m.closers, ret)
	return operationsParts{admin: adminSvc, placeholder: placeholder}, nil
}

// Reload reads the config file at path again. A file with problems is
// refused, every problem logged, and the config in force stays; a good one
// is put in force at once as far as a running process can follow it, and
// what waits for a restart is named.
func (m *Main) Reload(path string) {
	next, err := config.Load(path)
	if err != nil {
		entry := m.Log.WithField("path", path)
		for _, problem := range strings.Split(err.Error(), "\n") {
			entry.WithField("problem", problem).Error("config reload refused")
		}
		entry.Error("config reload refused: the config in force is unchanged")
		return
	}
	restart := m.live.Reload(next)
	if lvl, err := logrus.ParseLevel(next.Repo.LogLevel); err == nil {
		m.Log.SetLevel(lvl)
	}
	for _, w := range next.Warnings() {
		m.Log.Warn(w)
	}
	m.Log.WithFields(logrus.Fields{"path": path, "homeservers": len(next.Homeservers)}).Info("config reloaded")
	if len(restart) > 0 {
		m.Log.WithField("keys", strings.Join(restart, ", ")).Warn("config changes applied only after a restart")
	}
}

// ready checks that the database answers and every datastore takes writes.
func (m *Main) ready(ctx context.Context) (map[string]string, bool) {
	report := map[string]string{"database": "ok"}
	ok := true
	if err := m.db.DB().PingContext(ctx); err != nil {
		report["database"], ok = err.Error(), false
	}
	for id, b := range m.blobs.ByID() {
		status := "ok"
		if c, can := b.(storage.Checker); can {
			if err := c.Check(ctx); err != nil {
				status, ok = err.Error(), false
			}
		}
		report["datastore "+id] = status
	}
	return report, ok
}

// listenMetrics serves /metrics, /healthz and /readyz on metrics.bindAddress,
// never on the public listener.
func (m *Main) listenMetrics() error {
	cfg := m.Config.Metrics
	if !cfg.Enabled {
		return nil
	}
	addr := net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { api.ServeReady(w, r, m.ready) })
	m.monLn, m.mon = ln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.mon.Serve(ln)
	m.Log.WithField("addr", ln.Addr().String()).Info("metrics listening")
	return nil
}

// MetricsAddr is the metrics listener's address, "" when it is off.
func (m *Main) MetricsAddr() string {
	if m.monLn == nil {
		return ""
	}
	return m.monLn.Addr().String()
}

// homeserverCalls are the homeserver calls of the admin API: admin checks
// through their cache, the rest direct.
type homeserverCalls struct {
	admins *homeserver.CachedAdmins
	*homeserver.Client
}

func (h homeserverCalls) IsAdmin(ctx context.Context, hs *config.Homeserver, token string) (bool, error) {
	return h.admins.IsAdmin(ctx, hs, token)
}

func (m *Main) openMeta(ctx context.Context) error {
	db := m.Config.Database
	var applied []string
	if db.Postgres != "" {
		pg, names, err := postgres.Open(ctx, db.Postgres, db.Pool)
		if err != nil {
			return fmt.Errorf("database.postgres: %w", err)
		}
		m.db, m.watcher, m.cast, applied = pg.Store, pg, pg, names
		m.Log.Info("metadata in postgres")
	} else {
		path := db.SQLite
		if path == "" {
			path = config.DefaultSQLitePath
			m.Log.WithField("path", path).Info("database.postgres and database.sqlite are unset: using the embedded SQLite default")
		}
		lite, names, err := sqlite.Open(ctx, path, db.Pool)
		if err != nil {
			return fmt.Errorf("database.sqlite: %w", err)
		}
		m.db, applied = lite.Store, names
		m.Log.WithField("path", path).Info("metadata in sqlite")
	}
	for _, name := range applied {
		m.Log.WithField("migration", name).Info("migration applied")
	}
	return nil
}

// openLimits returns the rate limits rateLimit asks for, with buckets where
// redis says, or nil when rate limiting is off.
func (m *Main) openLimits(ctx context.Context) (*ratelimit.Limits, error) {
	if !m.Config.RateLimit.Enabled {
		m.Log.Info("rate limiting off")
		return nil, nil
	}
	if !m.Config.Redis.Enabled {
		m.Log.Info("rate limits kept in this process")
		return ratelimit.New(m.Config.RateLimit, memlimit.New()), nil
	}
	l, err := redislimit.Open(ctx, m.Config.Redis)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	m.closers = append(m.closers, l)
	m.Log.WithField("shards", len(m.Config.Redis.Shards)).Info("rate limits shared through redis")
	return ratelimit.New(m.Config.RateLimit, l), nil
}

// previewService builds URL previews behind the network policy, storing
// images through images, or returns nil when previews are off.
func (m *Main) previewService(images preview.ImageStore, log *logrus.Entry) (*preview.Service, error) {
	cfg := m.Config.URLPreviews
	if !cfg.Enabled {
		return nil, nil
	}
	policy, err := netguard.NewPolicy(cfg.AllowedNetworks, append(netguard.DefaultDenied(), cfg.DisallowedNetworks...))
	if err != nil {
		return nil, fmt.Errorf("urlPreviews: %w", err)
	}
	timeout := time.Duration(m.Config.Timeouts.URLPreviewTimeoutSeconds) * time.Second
	return preview.NewService(preview.ServiceOptions{
		Config: cfg, Timeout: timeout, Fetcher: preview.NewFetcher(cfg, policy.Client(timeout, cfg.PreviewUnsafeCertificates)),
		Cache: m.db, Images: images, Log: log,
	})
}

// federationClient builds the remote-media client: signing keys of the
// homeservers that have one, the network policy, extra CAs and overrides.
func (m *Main) federationClient() (*federation.Client, error) {
	cfg := m.Config.Federation
	keys := map[string]*federation.SigningKey{}
	for i, hs := range m.Config.Homeservers {
		if hs.SigningKeyPath == "" {
			m.Log.WithField("server_name", hs.Name).Warn("no signingKeyPath: remote media is fetched over the legacy route only")
			continue
		}
		k, err := federation.LoadSigningKey(hs.SigningKeyPath)
		if err != nil {
			return nil, fmt.Errorf("homeservers[%d].signingKeyPath: %w", i, err)
		}
		keys[hs.Name] = k
	}
	policy, err := netguard.NewPolicy(cfg.AllowedNetworks, append(netguard.DefaultDenied(), cfg.DisallowedNetworks...))
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for i, path := range cfg.CustomCAFiles {
		pem, err := os.ReadFile(path)
		if err != nil || !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("federation.customCAFiles[%d]: %s holds no PEM certificate (%v)", i, path, err)
		}
	}
	dial := policy.Dialer().DialContext
	wellKnown := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots}, ResponseHeaderTimeout: 10 * time.Second,
	}}
	return federation.NewClient(federation.ClientOptions{
		Resolver: federation.NewResolver(wellKnown, net.DefaultResolver, cfg.ServerOverrides),
		Keys:     keys, Dial: dial, Roots: roots,
		Timeout: time.Duration(m.Config.Timeouts.FederationTimeoutSeconds) * time.Second,
	}), nil
}

// Addr is the address the server listens on (useful with port 0).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Done yields the server's error if it stops serving on its own.
func (m *Main) Done() <-chan error { return m.served }

// Close stops accepting requests and lets those in flight finish for up to
// timeouts.shutdownGraceSeconds. Past that it closes their connections (a
// stalled upload then fails and removes its temp file) and waits for their
// handlers to return. Then it stops the services' background work and
// closes the stores.
func (m *Main) Close() error {
	if m.srv != nil {
		grace := time.Duration(m.Config.Timeouts.ShutdownGraceSeconds) * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			m.Log.WithField("grace_seconds", grace.Seconds()).Warn("requests still running after the grace period; closing their connections")
			m.srv.Close()
			m.waitHandlers()
		}
	}
	if m.mon != nil {
		m.mon.Close()
	}
	return m.closeAll()
}

// waitHandlers waits up to handlerWait for the handlers still running.
func (m *Main) waitHandlers() {
	done := make(chan struct{})
	go func() { m.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(handlerWait):
		m.Log.Warn("handlers still running after their connections were closed")
	}
}

// closeAll closes the services (newest first: they use what was opened
// before them), then the blob and metadata stores.
func (m *Main) closeAll() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i].Close())
	}
	m.closers = nil
	if m.blobs != nil {
		errs = append(errs, m.blobs.Close())
		m.blobs = nil
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
		m.db = nil
	}
	return errors.Join(errs...)
}
