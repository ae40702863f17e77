package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	"github.com/mediarepo/mediarepo/homeserver/homeservertest"
	"github.com/mediarepo/mediarepo/importer"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/preview"
	"github.com/mediarepo/mediarepo/ratelimit"
	"github.com/mediarepo/mediarepo/retention"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/storagetest"
	"github.com/mediarepo/mediarepo/tasks"
	"github.com/mediarepo/mediarepo/thumbnailer"
	"github.com/mediarepo/mediarepo/thumbnails"
	"github.com/mediarepo/mediarepo/thumbnails/ffmpeg"
	"github.com/mediarepo/mediarepo/transfer"
)

const (
	aliceToken  = "alice-token-secret" // @alice, listed in admins
	bobToken    = "bob-token-secret"
	carolToken  = "carol-token-secret"
	modToken    = "mod-token-secret" // @mod, an admin of its homeserver
	guestToken  = "guest-token-secret"
	sharedToken = "shared-secret-0123456789"
)

// testServer is the real api.Server on real stores behind loopback HTTP, with
// a fake whoami homeserver.
type testServer struct {
	*httptest.Server
	fake  *homeservertest.Server
	other *homeservertest.Server // other.example's
	meta  *countingMeta
	blobs *disk.Store
	logs  *syncBuffer
	log   *logrus.Logger
}

// backends runs fn once per metadata store.
func backends(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// newTestServer starts a server on backend ("sqlite" or "postgres"); edit may
// change config values before the server is built.
func newTestServer(t testing.TB, backend string, edit func(*config.Config)) *testServer {
	t.Helper()
	var meta metaStore
	switch backend {
	case "postgres":
		meta = storagetest.OpenPostgres(t)
	default:
		meta = storagetest.OpenSQLite(t)
	}
	return newTestServerOn(t, meta, filepath.Join(t.TempDir(), "blobs"), edit)
}

// crossToken is a token example.org's homeserver says belongs to a user of
// other.example, as a misconfigured or hostile homeserver might.
const crossToken = "cross-token-secret"

// testUsers is what each test homeserver's whoami knows: the same tokens, for
// users of its own server.
func testUsers(server string) map[string]homeservertest.User {
	users := map[string]homeservertest.User{
		aliceToken: {UserID: "@alice:" + server, DeviceID: "ALICE"},
		bobToken:   {UserID: "@bob:" + server, DeviceID: "BOB"},
		carolToken: {UserID: "@carol:" + server, DeviceID: "CAROL"},
		modToken:   {UserID: "@mod:" + server, DeviceID: "MOD", Admin: true},
		guestToken: {UserID: "@guest:" + server, IsGuest: true},
	}
	if server == "example.org" {
		users[crossToken] = homeservertest.User{UserID: "@quota:other.example"}
	}
	return users
}

// metaStore is every metadata interface, as the real stores implement them.
type metaStore interface {
	storage.MediaStore
	storage.ThumbnailStore
	storage.ReservationStore
	storage.PreviewStore
	storage.CatalogStore
	storage.ModerationStore
	storage.PurgeStore
	storage.TaskStore
	storage.AccessStore
	storage.LeaseStore
	storage.ExportStore
	storage.TransferStore
	storage.TotalsStore
	storage.Locker
	storage.BlurhashStore
}

// stack is what a test may add to the server: the optional parts, and how
// often a waiting download looks again.
type stack struct {
	cfg           *config.Config
	federation    *federation.Client
	limiter       ratelimit.Limiter
	previews      *preview.Fetcher
	uploadRecheck time.Duration
	scanner       media.Scanner
	rescanner     *antivirus.Scanner // the admin API's rescans; nil: off
}

// newTestServerOn starts a server on the given metadata store and blob
// directory, so that two servers can share them as two processes would. It
// wires the services as cmd/media-repo does.
func newTestServerOn(t testing.TB, meta metaStore, blobDir string, edit func(*config.Config), opts ...func(*stack)) *testServer {
	t.Helper()
	fake := homeservertest.WhoAmI(t, testUsers("example.org"))
	fakeOther := homeservertest.WhoAmI(t, testUsers("other.example"))
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
homeservers:
  - {name: example.org, csApi: %q}
  - {name: other.example, csApi: %q}
sharedSecretAuth: {enabled: true, token: %q}
admins: ["@alice:example.org"]
datastores:
  - {type: file, id: local, forKinds: [all], opts: {path: %q}}
  - {type: file, id: cold, forKinds: [], opts: {path: %q}}
`, fake.URL, fakeOther.URL, sharedToken, blobDir, blobDir+"-cold")))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	blobs, err := disk.Open(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetLevel(logrus.DebugLevel)
	st := &stack{cfg: cfg}
	for _, o := range opts {
		o(st)
	}
	counting := &countingMeta{metaStore: meta}
	srv := mustWire(t, st, counting, blobs, log)
	ts := &testServer{Server: httptest.NewServer(srv), fake: fake, other: fakeOther, meta: counting, blobs: blobs, logs: logs, log: log}
	t.Cleanup(ts.Close)
	return ts
}

// mustWire builds the services and the api.Server on meta and blobs.
func mustWire(t testing.TB, st *stack, meta *countingMeta, blobs *disk.Store, log *logrus.Logger) *api.Server {
	t.Helper()
	cfg := st.cfg
	cold, err := disk.Open(blobs.Root() + "-cold")
	if err != nil {
		t.Fatal(err)
	}
	stores, err := storage.NewDatastores(map[string]storage.BlobStore{"local": blobs, "cold": cold},
		storage.Roles{LocalMedia: "local", RemoteMedia: "local", Thumbnails: "local"})
	if err != nil {
		t.Fatal(err)
	}
	entry := logrus.NewEntry(log)
	thumbs, err := thumbnailer.New(thumbnailer.Options{
		Config: cfg.Thumbnails, Thumbnails: meta, Blobs: stores, Generator: thumbnails.New(cfg.Thumbnails, ffmpegFor(cfg)...), Log: entry,
		Locker: meta,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { thumbs.Close() })
	opts := media.Options{
		Config: media.Config{
			Uploads: cfg.Uploads, Downloads: cfg.Downloads, IgnoredHosts: cfg.Federation.IgnoredHosts,
			FetchTimeout: time.Duration(cfg.Timeouts.FederationTimeoutSeconds) * time.Second,
			Freeze:       cfg.Repo.FreezeUnauthenticatedMedia, Recheck: st.uploadRecheck,
		},
		Media: meta, Reservations: meta, Blobs: stores, Stored: thumbs.Pregenerate, Access: meta, Log: entry, Locker: meta,
	}
	if bh := cfg.FeatureSupport.MSC2448; bh.Enabled {
		opts.Blurhash = func(ctx context.Context, m *storage.Media) (string, error) { return thumbs.Blurhash(ctx, m, bh) }
		opts.Blurhashes = meta
	}
	if st.federation != nil {
		opts.Remote = st.federation
	}
	if st.scanner != nil {
		opts.Scanner = st.scanner
	}
	if w, ok := meta.metaStore.(storage.UploadWatcher); ok {
		opts.Watcher = w
	}
	svc, err := media.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	client := homeserver.NewClient(30 * time.Second)
	auth := homeserver.NewCachedAuthenticator(client, time.Minute)
	t.Cleanup(func() { auth.Close() })
	admins := homeserver.NewCachedAdmins(client, time.Minute)
	var cast storage.Broadcaster
	if b, ok := meta.metaStore.(storage.Broadcaster); ok {
		cast = b
	}
	events := bus.New(cast, entry)
	t.Cleanup(func() { events.Close() })
	events.Subscribe(bus.Token, func(key string) { auth.Forget(key); admins.Forget(key) })
	events.Subscribe(bus.User, auth.ForgetUser)
	events.Subscribe(bus.Media, func(key string) {
		origin, mediaID, _ := strings.Cut(key, "/")
		svc.Forget(origin, mediaID)
		thumbs.Forget()
	})
	runner, err := tasks.New(tasks.Options{Tasks: meta, Leases: meta, Log: entry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	archives, err := archive.New(archive.Options{
		Live: config.NewLive(cfg), Blobs: stores, Tasks: runner, Bus: events, Log: entry, Datastore: "local", SpoolDir: t.TempDir(),
		Remover: &retention.Remover{Store: meta, Blobs: stores.ByID(), Log: entry},
		Stores: archive.Stores{Catalog: meta, Exports: meta,
			Import: importer.Stores{Media: meta, Thumbnails: meta, Moderation: meta, Access: meta, Blobs: stores}},
	})
	if err != nil {
		t.Fatal(err)
	}
	transfers, err := transfer.NewService(transfer.ServiceOptions{
		Store: meta, Blobs: stores.ByID(), Tasks: runner, Log: entry,
		Changed: func() { events.Publish(context.Background(), bus.Media, "") },
	})
	if err != nil {
		t.Fatal(err)
	}
	var rescans *antivirus.Rescanner
	if st.rescanner != nil {
		rescans = &antivirus.Rescanner{Store: meta, Blobs: stores, Scanner: st.rescanner, Log: entry, Tasks: runner,
			Changed: func() { events.Publish(context.Background(), bus.Media, "") }}
	}
	runner.Sweep()
	adminSvc, err := admin.New(admin.Options{
		Config: cfg, Stores: admin.Stores{Media: meta, Catalog: meta, Totals: meta, Moderation: meta, Purge: meta, Tasks: meta}, Blobs: stores,
		Homeservers: adminCalls{admins: admins, Client: client}, Bus: events, Log: entry, Archives: archives, Transfers: transfers,
		Rescans: rescans,
	})
	if err != nil {
		t.Fatal(err)
	}
	placeholder, err := thumbnails.NewPlaceholder(cfg.Quarantine.ThumbnailPath)
	if err != nil {
		t.Fatal(err)
	}
	apiOpts := api.Options{
		Config: cfg, Media: svc, Thumbnails: thumbs, Log: log, Federation: st.federation, Auth: auth,
		Admin: adminSvc, Placeholder: placeholder, Logout: client, Bus: events,
	}
	if cfg.Console.Enabled {
		apiOpts.Console, err = console.New(console.Options{Admin: adminSvc, Thumbnails: thumbs, Originals: svc,
			Config: func() *config.Config { return cfg }, Log: entry})
		if err != nil {
			t.Fatal(err)
		}
		events.Subscribe(bus.Token, apiOpts.Console.ForgetToken)
		events.Subscribe(bus.User, apiOpts.Console.ForgetUser)
	}
	if st.limiter != nil {
		apiOpts.Limits = ratelimit.New(cfg.RateLimit, st.limiter)
	}
	if st.previews != nil {
		apiOpts.Previews, err = preview.NewService(preview.ServiceOptions{
			Config: cfg.URLPreviews, Timeout: time.Duration(cfg.Timeouts.URLPreviewTimeoutSeconds) * time.Second,
			Fetcher: st.previews, Cache: meta, Images: svc, Log: entry,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { apiOpts.Previews.Close() })
	}
	srv, err := api.New(apiOpts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// adminCalls are the admin API's homeserver calls, as cmd/media-repo wires them.
type adminCalls struct {
	admins *homeserver.CachedAdmins
	*homeserver.Client
}

func (a adminCalls) IsAdmin(ctx context.Context, hs *config.Homeserver, token string) (bool, error) {
	return a.admins.IsAdmin(ctx, hs, token)
}

// reqOpt changes a request before it is sent.
type reqOpt func(*http.Request)

func withToken(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func withHost(h string) reqOpt { return func(r *http.Request) { r.Host = h } }

// ffmpegFor is the real ffmpeg for a config that thumbnails video or audio
// and names a binary that exists, as run.go does.
func ffmpegFor(cfg *config.Config) []thumbnails.Option {
	if len(thumbnails.AVTypes(cfg.Thumbnails.Types)) == 0 {
		return nil
	}
	r, err := ffmpeg.New(cfg.Thumbnails.FFmpeg)
	if err != nil {
		return nil // a test of the missing binary
	}
	return []thumbnails.Option{thumbnails.WithAV(r)}
}

func withHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// do sends a request (Host example.org unless changed) and reads the answer.
func (ts *testServer) do(t testing.TB, method, path string, body io.Reader, opts ...reqOpt) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "example.org"
	for _, o := range opts {
		o(req)
	}
	client := *ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// mustUpload uploads body and returns the media ID.
func (ts *testServer) mustUpload(t testing.TB, body []byte, contentType, filename string, opts ...reqOpt) string {
	t.Helper()
	path := "/_matrix/media/v3/upload"
	if filename != "" {
		path += "?filename=" + urlQueryEscape(filename)
	}
	opts = append([]reqOpt{withToken(aliceToken)}, opts...)
	if contentType != "" {
		opts = append(opts, withHeader("Content-Type", contentType))
	}
	resp, b := ts.do(t, "POST", path, bytes.NewReader(body), opts...)
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(strings.TrimPrefix(out.ContentURI, "mxc://"), "/")
	if !ok {
		t.Fatalf("content_uri = %q", out.ContentURI)
	}
	return id
}

// wantError checks a Matrix error response.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, errcode string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Code    string `json:"errcode"`
		Message string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Code != errcode || e.Message == "" {
		t.Errorf("errcode = %q (error %q), want %s with a message", e.Code, e.Message, errcode)
	}
}

// countingMeta is the real store, counting lookups and thumbnail inserts so
// tests can see the caches and the single-flight at work.
type countingMeta struct {
	metaStore
	mu      sync.Mutex
	lookups int
	thumbs  int
}

func (c *countingMeta) CreateThumbnail(ctx context.Context, t *storage.Thumbnail, publish storage.Publish) error {
	c.mu.Lock()
	c.thumbs++
	c.mu.Unlock()
	return c.metaStore.CreateThumbnail(ctx, t, publish)
}

func (c *countingMeta) ThumbnailInserts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.thumbs
}

func (c *countingMeta) Media(ctx context.Context, origin, id string) (*storage.Media, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.metaStore.Media(ctx, origin, id)
}

func (c *countingMeta) Lookups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}
