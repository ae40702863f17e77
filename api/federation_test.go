package api_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/config"
	"github.com/mediarepo/mediarepo/federation"
	"github.com/mediarepo/mediarepo/federation/federationtest"
	"github.com/mediarepo/mediarepo/netguard"
	"github.com/mediarepo/mediarepo/ratelimit/memlimit"
	"github.com/mediarepo/mediarepo/storage/storagetest"
)

// peer is one mediarepo instance acting for one homeserver, behind a TLS
// front that also publishes the homeserver's signing key.
type peer struct {
	*testServer
	front *federationtest.Remote
	key   *federation.SigningKey
	name  string
}

// twoPeers starts A (example.org) and B (other.example), each with its own
// signing key and CA, each trusting the other's CA and reaching it through
// federation.serverOverrides on loopback, as an operator's staging set-up.
func twoPeers(t *testing.T) (a, b *peer) {
	a, bs := peerGroup(t, 1, func(t *testing.T) metaStore { return storagetest.OpenSQLite(t) })
	return a, bs[0]
}

// peerGroup is twoPeers with B run as n instances sharing B's key, blob
// directory and a metadata store from bStore per instance (the same
// database, for instances of one deployment); B's front reaches the first.
func peerGroup(t *testing.T, n int, bStore func(t *testing.T) metaStore, bOpts ...func(*stack)) (a *peer, bs []*peer) {
	a = &peer{name: "example.org"}
	b := &peer{name: "other.example"}
	var handlers [2]http.Handler
	for i, p := range []*peer{a, b} {
		var err error
		if p.key, err = federation.GenerateSigningKey(fmt.Sprintf("peer%d", i)); err != nil {
			t.Fatal(err)
		}
		p.front = federationtest.Start(t, p.name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers[i].ServeHTTP(w, r)
		}))
	}
	roots := x509.NewCertPool()
	for _, p := range []*peer{a, b} {
		pem, _ := os.ReadFile(p.front.CAFile)
		roots.AppendCertsFromPEM(pem)
	}
	overrides := map[string]string{a.name: a.front.Listener.Addr().String(), b.name: b.front.Listener.Addr().String()}
	client := func(p *peer) *federation.Client {
		policy, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
		if err != nil {
			t.Fatal(err)
		}
		return federation.NewClient(federation.ClientOptions{
			Resolver: federation.NewResolver(policy.Client(5*time.Second, false), nil, overrides),
			Keys:     map[string]*federation.SigningKey{p.name: p.key},
			Dial:     policy.Dialer().DialContext, Roots: roots, Timeout: 10 * time.Second,
		})
	}
	withClient := func(p *peer) func(*stack) { return func(o *stack) { o.federation = client(p) } }
	a.testServer = newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"), nil, withClient(a))
	bBlobs := filepath.Join(t.TempDir(), "blobs")
	for range n {
		inst := *b
		inst.testServer = newTestServerOn(t, bStore(t), bBlobs, nil, append([]func(*stack){withClient(b)}, bOpts...)...)
		bs = append(bs, &inst)
	}
	for i, p := range []*peer{a, bs[0]} {
		keyDoc, err := p.key.KeyResponse(p.name, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		mediaRepo := p.testServer.Config.Handler
		handlers[i] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/_matrix/key/v2/server" { // the homeserver's job, played here
				w.Header().Set("Content-Type", "application/json")
				w.Write(keyDoc)
				return
			}
			mediaRepo.ServeHTTP(w, r)
		})
	}
	return a, bs
}

func TestFederationBetweenTwoInstances(t *testing.T) {
	a, b := twoPeers(t)
	content := bytes.Repeat([]byte("fed "), 500)
	id := a.mustUpload(t, content, "application/x-custom", "résumé final.pdf")

	// B's user asks B for A's media: B fetches it over the signed route.
	var wg sync.WaitGroup
	bodies := make([][]byte, 100)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := b.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil,
				withToken(aliceToken), withHost("other.example"))
			if resp.StatusCode != 200 {
				t.Errorf("download through B = %d %s", resp.StatusCode, body)
			}
			bodies[i] = body
		}()
	}
	wg.Wait()
	for i, body := range bodies {
		if !bytes.Equal(body, content) {
			t.Fatalf("response %d: %d bytes, want the %d uploaded", i, len(body), len(content))
		}
	}
	resp, _ := b.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken), withHost("other.example"))
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if resp.Header.Get("Content-Type") != "application/x-custom" || params["filename"] != "résumé final.pdf" {
		t.Errorf("through B: Content-Type %q, filename %q", resp.Header.Get("Content-Type"), params["filename"])
	}
	// One outbound fetch for the 101 requests: A logged one federation download.
	if n := strings.Count(a.logs.String(), "path=/_matrix/federation/v1/media/download/"+id); n != 1 {
		t.Errorf("A served %d federation downloads, want 1", n)
	}
}

// signedGet sends a federation request to A signed by B's key, optionally
// altered after signing.
func signedGet(t *testing.T, a, b *peer, uri, destination string, alter func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", a.front.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = a.name
	if destination != "" {
		auth, err := b.key.Authorization("GET", uri, b.name, destination)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
	}
	if alter != nil {
		alter(req)
	}
	resp, err := a.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestFederationInbound(t *testing.T) {
	a, b := twoPeers(t)
	id := a.mustUpload(t, photo(t, 400, 300), "image/png", "photo.png")
	uri := "/_matrix/federation/v1/media/download/" + id

	resp, body := signedGet(t, a, b, uri, a.name, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("signed download = %d %s", resp.StatusCode, body)
	}
	parts := readMultipart(t, resp, body)
	if len(parts) != 2 || parts[0].body != "{}" || parts[0].contentType != "application/json" ||
		parts[1].contentType != "image/png" || parts[1].disposition != "inline; filename=photo.png" {
		t.Fatalf("multipart = %+v", parts)
	}

	resp, body = signedGet(t, a, b, "/_matrix/federation/v1/media/thumbnail/"+id+"?width=96&height=96&method=crop", a.name, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("signed thumbnail = %d %s", resp.StatusCode, body)
	}
	if parts := readMultipart(t, resp, body); len(parts) != 2 || parts[1].contentType != "image/jpeg" {
		t.Errorf("thumbnail multipart = %+v", parts)
	}

	tests := map[string]struct {
		uri         string
		destination string
		alter       func(*http.Request)
		wantStatus  int
		wantErrcode string
	}{
		"no header":         {uri, "", nil, 401, "M_UNAUTHORIZED"},
		"wrong destination": {uri, "elsewhere.example", nil, 401, "M_UNAUTHORIZED"},
		"tampered query":    {uri, a.name, func(r *http.Request) { r.URL.RawQuery = "timeout_ms=1" }, 401, "M_UNAUTHORIZED"},
		"bad signature": {uri, a.name, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `sig="`, `sig="AAAA`, 1))
		}, 401, "M_UNAUTHORIZED"},
		"unknown media": {"/_matrix/federation/v1/media/download/nope", a.name, nil, 404, "M_NOT_FOUND"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := signedGet(t, a, b, tt.uri, tt.destination, tt.alter)
			wantError(t, resp, body, tt.wantStatus, tt.wantErrcode)
		})
	}

	// Remote media is never served on the federation routes: B has cached A's
	// media, yet asking B for it over federation is 404.
	b.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(aliceToken), withHost("other.example"))
	req, _ := http.NewRequest("GET", b.front.URL+uri, nil)
	req.Host = b.name
	auth, _ := a.key.Authorization("GET", uri, a.name, b.name)
	req.Header.Set("Authorization", auth)
	resp, err := b.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("B serving A's media over federation = %d, want 404", resp.StatusCode)
	}
}

type part struct{ contentType, disposition, body string }

func readMultipart(t *testing.T, resp *http.Response, body []byte) []part {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var parts []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, part{p.Header.Get("Content-Type"), p.Header.Get("Content-Disposition"), string(b)})
	}
}

func TestForgedOriginsCannotMakeUsFetchKeys(t *testing.T) {
	// A "key server" behind 300 forged origin names, counting the
	// connections made to it (its certificate fits none of the names, so no
	// fetch gets further: what matters is that none is attempted).
	keyServer := federationtest.Start(t, "keys.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
	}))
	overrides := map[string]string{}
	for i := range 300 {
		overrides[fmt.Sprintf("forged%d.test", i)] = keyServer.Listener.Addr().String()
	}
	policy, err := netguard.NewPolicy([]string{"127.0.0.0/8"}, netguard.DefaultDenied())
	if err != nil {
		t.Fatal(err)
	}
	client := federation.NewClient(federation.ClientOptions{
		Resolver: federation.NewResolver(policy.Client(5*time.Second, false), nil, overrides),
		Dial:     policy.Dialer().DialContext, Roots: keyServer.Roots, Timeout: 5 * time.Second,
	})
	t.Cleanup(func() { client.Close() })
	ts := newTestServerOn(t, storagetest.OpenSQLite(t), filepath.Join(t.TempDir(), "blobs"),
		func(c *config.Config) {
			c.RateLimit = config.RateLimit{Enabled: true, RequestsPerSecond: 0.001, Burst: 20}
		},
		func(o *stack) { o.federation, o.limiter = client, memlimit.New() })
	forged := func(origin string) (*http.Response, []byte) {
		return ts.do(t, "GET", "/_matrix/federation/v1/media/download/abc", nil,
			withHeader("Authorization", `X-Matrix origin="`+origin+`",destination="example.org",key="ed25519:x",sig="AAAA"`))
	}

	// One forged origin, 200 times: one fetch, then the failure is remembered.
	for range 200 {
		forged("forged0.test")
	}
	if n := keyServer.Connections(); n != 1 {
		t.Errorf("200 requests forging one origin made %d key fetches, want 1", n)
	}
	// Many forged origins: each would need a fetch, charged to the client's IP first.
	limited := 0
	for i := 1; i < 300; i++ {
		if resp, _ := forged(fmt.Sprintf("forged%d.test", i)); resp.StatusCode == 429 {
			limited++
		}
	}
	if n := keyServer.Connections(); n > 21 {
		t.Errorf("299 forged origins made %d key fetches, want at most the burst of 20 (+1)", n)
	}
	if limited < 250 {
		t.Errorf("%d of 299 forged requests were rate limited, want nearly all past the burst", limited)
	}
}
