package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/mediarepo/mediarepo/federation"
)

// noDNS is a resolver whose every look-up fails, so SRV falls through.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no dns in tests")
}}

// wellKnownSite serves /.well-known/matrix/server for any host over TLS; the
// returned client reaches it whatever host it dials.
func wellKnownSite(t *testing.T, body string, cacheControl string) (*http.Client, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/.well-known/matrix/server" || body == "" {
			http.NotFound(w, r)
			return
		}
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	c := srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	tr.TLSClientConfig.ServerName = "example.com" // the test certificate's name
	c.Transport = tr
	return c, &hits
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	delegating, _ := wellKnownSite(t, `{"m.server": "matrix.example.com:443"}`, "")
	delegatingNoPort, _ := wellKnownSite(t, `{"m.server": "matrix.example.com"}`, "")
	none, _ := wellKnownSite(t, "", "")
	tests := map[string]struct {
		client    *http.Client
		overrides map[string]string
		name      string
		want      federation.Target
	}{
		"override":                {none, map[string]string{"remote.test": "127.0.0.1:9999"}, "remote.test", federation.Target{Addr: "127.0.0.1:9999", TLSName: "remote.test", Host: "remote.test"}},
		"ip literal":              {none, nil, "1.2.3.4", federation.Target{Addr: "1.2.3.4:8448", TLSName: "1.2.3.4", Host: "1.2.3.4"}},
		"ipv6 literal with port":  {none, nil, "[2001:db8::1]:8000", federation.Target{Addr: "[2001:db8::1]:8000", TLSName: "2001:db8::1", Host: "[2001:db8::1]:8000"}},
		"explicit port":           {none, nil, "example.org:8000", federation.Target{Addr: "example.org:8000", TLSName: "example.org", Host: "example.org:8000"}},
		"well-known with port":    {delegating, nil, "example.org", federation.Target{Addr: "matrix.example.com:443", TLSName: "matrix.example.com", Host: "matrix.example.com:443"}},
		"well-known without port": {delegatingNoPort, nil, "example.org", federation.Target{Addr: "matrix.example.com:8448", TLSName: "matrix.example.com", Host: "matrix.example.com"}},
		"no well-known, no srv":   {none, nil, "example.org", federation.Target{Addr: "example.org:8448", TLSName: "example.org", Host: "example.org"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := federation.NewResolver(tt.client, noDNS, tt.overrides)
			got, err := r.Resolve(ctx, tt.name)
			if err != nil || got != tt.want {
				t.Errorf("Resolve(%s) = %+v, %v; want %+v", tt.name, got, err, tt.want)
			}
		})
	}
	if _, err := federation.NewResolver(none, noDNS, nil).Resolve(ctx, "bad/name"); err == nil {
		t.Error("Resolve accepted a malformed server name")
	}
}

func TestWellKnownCached(t *testing.T) {
	client, hits := wellKnownSite(t, `{"m.server": "matrix.example.com:443"}`, "max-age=3600")
	r := federation.NewResolver(client, noDNS, nil)
	for range 3 {
		if _, err := r.Resolve(context.Background(), "example.org"); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("well-known fetched %d times, want once", hits.Load())
	}
	failing, failHits := wellKnownSite(t, "", "")
	r = federation.NewResolver(failing, noDNS, nil)
	for range 3 {
		r.Resolve(context.Background(), "example.org")
	}
	if failHits.Load() != 1 {
		t.Errorf("failed well-known fetched %d times, want once (failures are cached briefly)", failHits.Load())
	}
}
