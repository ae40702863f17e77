package media_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/federation/federationtest"
	"github.com/mediarepo/mediarepo/media"
	"github.com/mediarepo/mediarepo/mxid"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/storage"
	"github.com/mediarepo/mediarepo/storage/disk"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// fixture is a media.Service on a real SQLite file and disk datastore.
type fixture struct {
	svc    *media.Service
	blobs  *disk.Store
	stored chan *storage.Media // what the Stored hook saw
}

// newFixture builds a service; remote, if set, is reached as remote.test.
func newFixture(t *testing.T, edit func(*media.Config), remote *federationtest.Remote) *fixture {
	t.Helper()
	meta := storagetest.OpenSQLite(t)
	blobs := storagetest.OpenDisk(t)
	stores, err := storage.NewDatastores(map[string]storage.BlobStore{"d": blobs}, storage.Roles{LocalMedia: "d", RemoteMedia: "d", Thumbnails: "d"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := media.Config{Uploads: config.Default().Uploads, Downloads: config.Default().Downloads, FetchTimeout: 10 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	f := &fixture{blobs: blobs, stored: make(chan *storage.Media, 100)}
	opts := media.Options{
		Config: cfg, Media: meta, Reservations: meta, Blobs: stores, Log: logrus.NewEntry(log),
		Stored: func(m *storage.Media) { f.stored <- m },
	}
	if remote != nil {
		opts.Remote = remoteClient(t, remote)
	}
	if f.svc, err = media.New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.svc.Close() })
	return f
}

func remoteClient(t *testing.T, remote *federationtest.Remote) *federation.Client {
	policy, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{"remote.test": remote.Listener.Addr().String()}
	return federation.NewClient(federation.ClientOptions{
		Resolver: federation.NewResolver(policy.Client(5*time.Second, false), nil, overrides),
		Dial:     policy.Dialer().DialContext, Roots: remote.Roots, Timeout: 10 * time.Second,
	})
}

func upload(body string) media.Upload {
	return media.Upload{Origin: "example.org", UserID: "@alice:example.org", Name: "a.txt", ContentType: "text/plain",
		Body: strings.NewReader(body), Size: int64(len(body))}
}

func mustRead(t *testing.T, svc *media.Service, m *storage.Media) string {
	t.Helper()
	r, err := svc.Open(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestUpload(t *testing.T) {
	f := newFixture(t, func(c *media.Config) { c.Freeze = true }, nil)
	ctx := context.Background()
	m, err := f.svc.Upload(ctx, upload("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !mxid.ValidMediaID(m.MediaID) || len(m.MediaID) != 32 || m.SizeBytes != 5 || m.UploadName != "a.txt" || !m.Authenticated {
		t.Errorf("row = %+v", m)
	}
	if got := mustRead(t, f.svc, m); got != "hello" {
		t.Errorf("stored bytes = %q", got)
	}
	found, err := f.svc.Find(ctx, media.Request{Origin: "example.org", MediaID: m.MediaID, Local: "example.org"})
	if err != nil || found.SHA256 != m.SHA256 {
		t.Errorf("Find = %+v, %v", found, err)
	}
	if hooked := <-f.stored; hooked.MediaID != m.MediaID {
		t.Errorf("Stored hook saw %s, want %s", hooked.MediaID, m.MediaID)
	}
}

func TestUploadRefusals(t *testing.T) {
	tests := map[string]struct {
		edit    func(*media.Config)
		prepare func(t *testing.T, svc *media.Service) // what is stored before
		up      media.Upload
		wantErr error
	}{
		"declared over maxBytes": {
			edit: func(c *media.Config) { c.Uploads.MaxBytes = 4 }, up: upload("hello"), wantErr: media.ErrTooLarge,
		},
		"under minBytes": {
			edit: func(c *media.Config) { c.Uploads.MinBytes = 10 }, up: upload("hello"), wantErr: media.ErrTooSmall,
		},
		"at quota before reading": {
			edit: func(c *media.Config) {
				c.Uploads.Quotas = config.Quotas{Enabled: true, Users: []config.QuotaRule{{Glob: "@alice:*", MaxFiles: 1}}}
			},
			prepare: func(t *testing.T, svc *media.Service) {
				if _, err := svc.Upload(context.Background(), upload("first")); err != nil {
					t.Fatal(err)
				}
			},
			up: media.Upload{Origin: "example.org", UserID: "@alice:example.org", Body: failingReader{}, Size: -1}, wantErr: storage.ErrQuotaExceeded,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tt.edit, nil)
			if tt.prepare != nil {
				tt.prepare(t, f.svc)
			}
			before := countBlobs(t, f.blobs)
			if _, err := f.svc.Upload(context.Background(), tt.up); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Upload = %v, want %v", err, tt.wantErr)
			}
			if after := countBlobs(t, f.blobs); after != before {
				t.Errorf("a refused upload left a blob (%d before, %d after)", before, after)
			}
		})
	}
}

// failingReader fails the test's upload if anything reads it.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) {
	return 0, errors.New("body read before the quota check")
}

func countBlobs(t *testing.T, s *disk.Store) int { return storagetest.CountBlobs(t, s.Root()) }

func TestReservations(t *testing.T) {
	f := newFixture(t, func(c *media.Config) { c.Uploads.MaxPending = 2 }, nil)
	ctx := context.Background()
	p, err := f.svc.Reserve(ctx, "example.org", "@alice:example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reserve(ctx, "example.org", "@alice:example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reserve(ctx, "example.org", "@alice:example.org"); !errors.Is(err, media.ErrTooManyPending) {
		t.Errorf("third reservation = %v, want ErrTooManyPending", err)
	}
	bob := upload("from bob")
	bob.UserID = "@bob:example.org"
	steps := []struct {
		name    string
		id      string
		up      media.Upload
		wantErr error
	}{
		{"never reserved", "notReservedID", upload("x"), media.ErrNotReserved},
		{"another user's", p.MediaID, bob, media.ErrNotOwner},
		{"the owner's", p.MediaID, upload("async bytes"), nil},
		{"again", p.MediaID, upload("twice"), media.ErrCannotOverwrite},
	}
	for _, st := range steps {
		if _, err := f.svc.UploadTo(ctx, st.id, st.up); !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: UploadTo = %v, want %v", st.name, err, st.wantErr)
		}
	}
	m, err := f.svc.Find(ctx, media.Request{Origin: "example.org", MediaID: p.MediaID, Local: "example.org"})
	if err != nil || mustRead(t, f.svc, m) != "async bytes" {
		t.Errorf("Find after UploadTo = %+v, %v", m, err)
	}
}

func TestFindWaitsForUpload(t *testing.T) {
	f := newFixture(t, func(c *media.Config) { c.Recheck = time.Hour }, nil) // only a wake-up ends the wait early
	ctx := context.Background()
	p, err := f.svc.Reserve(ctx, "example.org", "@alice:example.org")
	if err != nil {
		t.Fatal(err)
	}
	req := media.Request{Origin: "example.org", MediaID: p.MediaID, Local: "example.org"}
	if _, err := f.svc.Find(ctx, req); !errors.Is(err, media.ErrNotYetUploaded) {
		t.Errorf("Find without waiting = %v, want ErrNotYetUploaded", err)
	}
	req.Wait = time.Minute
	got := make(chan error, 1)
	go func() {
		m, err := f.svc.Find(ctx, req)
		if err == nil && mustRead(t, f.svc, m) != "late" {
			err = errors.New("wrong bytes")
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it start waiting
	if _, err := f.svc.UploadTo(ctx, p.MediaID, upload("late")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("waiting Find = %v", err)
	}
	if _, err := f.svc.Find(ctx, media.Request{Origin: "example.org", MediaID: "neverReserved", Local: "example.org", Wait: time.Minute}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Find of an unknown ID = %v, want ErrNotFound at once", err)
	}
}

// slowRemote is remote.test, serving /_matrix/media/v3/download/remote.test/{id}
// once release is closed (or the request is cancelled); "missing" is a 404.
func slowRemote(t *testing.T, release <-chan struct{}) (*federationtest.Remote, *atomic.Int32) {
	var hits atomic.Int32
	remote := federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/_matrix/media/v3/download/remote.test/") {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"no"}`)
			return
		}
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"errcode":"M_NOT_FOUND","error":"no such media"}`)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("remote png"))
	}))
	return remote, &hits
}

func remoteRequest(id string) media.Request {
	return media.Request{Origin: "remote.test", MediaID: id, Local: "example.org", Remote: true}
}

func TestRemoteFetchedOnce(t *testing.T) {
	release := make(chan struct{})
	remote, hits := slowRemote(t, release)
	f := newFixture(t, nil, remote)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := f.svc.Find(ctx, remoteRequest("abc"))
			if err != nil || m.ContentType != "image/png" || m.Origin != "remote.test" {
				t.Errorf("Find = %+v, %v", m, err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("remote asked %d times, want once", n)
	}
	// Stored: no fetch without permission to fetch.
	req := remoteRequest("abc")
	req.Remote = false
	if _, err := f.svc.Find(ctx, req); err != nil {
		t.Errorf("stored remote media without fetching = %v", err)
	}
	if _, err := f.svc.Find(ctx, remoteRequest("missing")); !errors.Is(err, federation.ErrNotFound) || !errors.Is(err, media.ErrRemoteFailed) {
		t.Errorf("missing remote media = %v, want federation.ErrNotFound", err)
	}
	before := hits.Load()
	if _, err := f.svc.Find(ctx, remoteRequest("missing")); !errors.Is(err, federation.ErrNotFound) || hits.Load() != before {
		t.Errorf("second look-up = %v after %d more requests; want the remembered failure", err, hits.Load()-before)
	}
	req = remoteRequest("notStored")
	req.Remote = false
	if _, err := f.svc.Find(ctx, req); !errors.Is(err, media.ErrNotCached) {
		t.Errorf("uncached without fetching = %v, want ErrNotCached", err)
	}
}

func TestCancelledCallerLeavesSharedFetch(t *testing.T) {
	release := make(chan struct{})
	remote, hits := slowRemote(t, release)
	f := newFixture(t, nil, remote)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := f.svc.Find(ctx, remoteRequest("shared"))
		first <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond) // until the fetch has reached the remote
	}
	other := make(chan error, 1)
	go func() {
		m, err := f.svc.Find(context.Background(), remoteRequest("shared"))
		if err == nil && mustRead(t, f.svc, m) != "remote png" {
			err = errors.New("wrong bytes")
		}
		other <- err
	}()
	cancel() // the client that started the fetch hangs up
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller = %v, want context.Canceled while the fetch is held", err)
	}
	close(release) // only now can the fetch finish
	if err := <-other; err != nil {
		t.Errorf("other caller = %v, want the fetched media", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("remote asked %d times, want once", n)
	}
}

func TestCloseCancelsFetch(t *testing.T) {
	remote, hits := slowRemote(t, make(chan struct{})) // never released
	f := newFixture(t, nil, remote)
	got := make(chan error, 1)
	go func() {
		_, err := f.svc.Find(context.Background(), remoteRequest("held"))
		got <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	f.svc.Close()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("fetch under Close = %v, want context.Canceled", err)
	}
	if _, err := f.svc.Find(context.Background(), remoteRequest("held2")); err == nil {
		t.Error("Find after Close fetched; want it refused")
	}
}
