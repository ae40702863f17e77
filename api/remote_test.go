package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/federation/federationtest"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// fakeRemote is "remote.test": /bytes and /big exist on its legacy media
// route, everything else is 404 M_NOT_FOUND. It counts media requests.
func fakeRemote(t *testing.T) (*federationtest.Remote, *atomic.Int32) {
	var hits atomic.Int32
	remote := federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(20 * time.Millisecond) // let concurrent first requests pile up
		switch r.URL.Path {
		case "/_matrix/media/v3/download/remote.test/bytes":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Disposition", "inline; filename=remote.txt")
			fmt.Fprint(w, "remote bytes")
		case "/_matrix/media/v3/download/remote.test/big":
			w.Write(bytes.Repeat([]byte("x"), 2000))
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"errcode":"M_NOT_FOUND","error":"no such media"}`)
		}
	}))
	return remote, &hits
}

func newFederatingServer(t *testing.T, remote *federationtest.Remote, edit func(*config.Config)) *testServer {
	policy, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{"remote.test": remote.Listener.Addr().String(), "down.test": "127.0.0.1:1"}
	client := federation.NewClient(federation.ClientOptions{
		Resolver: federation.NewResolver(policy.Client(5*time.Second, false), nil, overrides),
		Dial:     policy.Dialer().DialContext, Roots: remote.Roots, Timeout: 10 * time.Second,
	})
	return newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"),
		func(c *config.Config) {
			c.Downloads.MaxBytes = 1000
			c.Federation.IgnoredHosts = []string{"ignored.test"}
			if edit != nil {
				edit(c)
			}
		},
		func(o *stack) { o.federation = client })
}

func TestRemoteMedia(t *testing.T) {
	remote, hits := fakeRemote(t)
	ts := newFederatingServer(t, remote, nil)
	get := func(path string, opts ...reqOpt) (*http.Response, []byte) {
		return ts.do(t, "GET", path, nil, append([]reqOpt{withToken(aliceToken)}, opts...)...)
	}

	// Concurrent first requests make one fetch; later ones come from storage.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := get("/_matrix/client/v1/media/download/remote.test/bytes")
			if resp.StatusCode != 200 || string(body) != "remote bytes" {
				t.Errorf("remote download = %d %q", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	resp, _ := get("/_matrix/client/v1/media/download/remote.test/bytes")
	if h := resp.Header; h.Get("Content-Type") != "text/plain" || h.Get("Content-Disposition") != "inline; filename=remote.txt" {
		t.Errorf("remote headers = %v", h)
	}
	if hits.Load() != 1 {
		t.Errorf("remote server asked %d times, want once", hits.Load())
	}

	tests := map[string]struct {
		path        string
		wantStatus  int
		wantErrcode string
	}{
		"remote 404":              {"/_matrix/client/v1/media/download/remote.test/missing", 404, "M_NOT_FOUND"},
		"over downloads.maxBytes": {"/_matrix/client/v1/media/download/remote.test/big", 502, "M_TOO_LARGE"},
		"unreachable":             {"/_matrix/client/v1/media/download/down.test/abc", 502, "M_UNKNOWN"},
		"ignored host":            {"/_matrix/client/v1/media/download/ignored.test/abc", 404, "M_NOT_FOUND"},
		"legacy while frozen":     {"/_matrix/media/v3/download/remote.test/other", 404, "M_NOT_FOUND"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := get(tt.path)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
		})
	}
	if n := countBlobs(t, ts.blobs.Root()); n != 1 {
		t.Errorf("datastore holds %d blobs, want only the one fetched (the oversize one removed)", n)
	}
	// Failures are remembered: asking again does not reach the remote.
	before := hits.Load()
	get("/_matrix/client/v1/media/download/remote.test/missing")
	if hits.Load() != before {
		t.Error("a cached failure reached the remote server again")
	}
}

func TestRemoteMediaLegacyUnfrozen(t *testing.T) {
	remote, hits := fakeRemote(t)
	ts := newFederatingServer(t, remote, func(c *config.Config) { c.Repo.FreezeUnauthenticatedMedia = false })
	resp, body := ts.do(t, "GET", "/_matrix/media/v3/download/remote.test/bytes?allow_remote=false", nil)
	wantError(t, resp, body, 404, "M_NOT_FOUND")
	if hits.Load() != 0 {
		t.Error("allow_remote=false reached the remote server")
	}
	resp, body = ts.do(t, "GET", "/_matrix/media/v3/download/remote.test/bytes", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "remote bytes") {
		t.Errorf("legacy remote download = %d %q", resp.StatusCode, body)
	}
}

func TestHangUpDuringSharedFetchFreesTheHandler(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	remote := federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "held bytes")
		case <-r.Context().Done():
		}
	}))
	ts := newFederatingServer(t, remote, nil)
	path := "/_matrix/client/v1/media/download/remote.test/held"

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
	req.Host = "example.org"
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	hungUp := make(chan error, 1)
	go func() {
		_, err := ts.Client().Do(req)
		hungUp <- err
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond) // the fetch has reached the remote
	}
	other := make(chan string, 1)
	go func() {
		resp, body := ts.do(t, "GET", path, nil, withToken(aliceToken))
		other <- fmt.Sprint(resp.StatusCode, " ", string(body))
	}()
	cancel()
	if err := <-hungUp; err == nil {
		t.Fatal("the hung-up request got an answer")
	}
	// The handler of the hung-up request returns while the fetch is still held.
	for !strings.Contains(ts.logs.String(), "request aborted by client") {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if got := <-other; got != "200 held bytes" {
		t.Errorf("other request = %q, want 200 with the bytes", got)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("remote asked %d times, want once", n)
	}
}

func TestFederationTest(t *testing.T) {
	remote := federationtest.Start(t, "remote.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_matrix/federation/v1/version" {
			fmt.Fprint(w, `{"server":{"name":"Fake","version":"1.0"}}`)
			return
		}
		w.WriteHeader(404)
	}))
	ts := newFederatingServer(t, remote, nil)
	const path = "/_matrix/media/unstable/admin/federation/test/"
	resp, body := ts.do(t, "GET", path+"remote.test", nil, withToken(aliceToken))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"versions_response":{"server":{"name":"Fake","version":"1.0"}}`) ||
		!strings.Contains(string(body), `"hostname":"remote.test"`) {
		t.Errorf("federation test = %d %s", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", path+"down.test", nil, withToken(aliceToken))
	wantError(t, resp, body, 502, "M_UNKNOWN")
	resp, body = ts.do(t, "GET", path+"remote.test", nil, withToken(modToken))
	wantError(t, resp, body, 403, "M_FORBIDDEN")
}
