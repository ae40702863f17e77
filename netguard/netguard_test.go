package netguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediarepo/mediarepo/netguard"
)

func TestAllowed(t *testing.T) {
	def := mustPolicy(t, nil, netguard.DefaultDenied())
	mmrStyle := mustPolicy(t, []string{"0.0.0.0/0", "::/0"}, netguard.DefaultDenied())
	loopbackOK := mustPolicy(t, []string{"127.0.0.0/8"}, netguard.DefaultDenied())
	tests := map[string]struct {
		p    *netguard.Policy
		ip   string
		want bool
	}{
		"public v4":                   {def, "93.184.216.34", true},
		"public v6":                   {def, "2606:2800:220:1:248:1893:25c8:1946", true},
		"loopback":                    {def, "127.0.0.1", false},
		"loopback high":               {def, "127.255.1.2", false},
		"private 10":                  {def, "10.1.2.3", false},
		"private 172":                 {def, "172.20.0.1", false},
		"private 192":                 {def, "192.168.1.1", false},
		"link-local":                  {def, "169.254.169.254", false},
		"cgnat":                       {def, "100.64.0.1", false},
		"multicast":                   {def, "224.0.0.1", false},
		"reserved":                    {def, "240.0.0.1", false},
		"unspecified":                 {def, "0.0.0.0", false},
		"v6 loopback":                 {def, "::1", false},
		"v6 ula":                      {def, "fd00::1", false},
		"v6 link-local":               {def, "fe80::1", false},
		"v4-mapped loopback":          {def, "::ffff:127.0.0.1", false},
		"v4-compatible loopback":      {def, "::127.0.0.1", false},
		"6to4 to private":             {def, "2002:c0a8:0101::1", false},
		"6to4 to public":              {def, "2002:5db8:d822::1", true},
		"nat64 to loopback":           {def, "64:ff9b::7f00:1", false},
		"nat64 to public":             {def, "64:ff9b::5db8:d822", true},
		"mmr allow-all keeps denials": {mmrStyle, "127.0.0.1", false},
		"mmr allow-all, public":       {mmrStyle, "93.184.216.34", true},
		"explicit loopback allowed":   {loopbackOK, "127.0.0.1", true},
		"allow list excludes others":  {loopbackOK, "93.184.216.34", false},
		"explicit loopback, private":  {loopbackOK, "10.0.0.1", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.p.Allowed(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Allowed(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestClientRefusesBeforeConnecting(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	client := mustPolicy(t, nil, netguard.DefaultDenied()).Client(5*time.Second, false)
	// A name that resolves to loopback is refused at dial time: DNS rebinding
	// cannot slip past a check made on the name.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	_, err := client.Get(url)
	if !netguard.Blocked(err) {
		t.Fatalf("GET %s = %v, want a netguard refusal", url, err)
	}
	if hits.Load() != 0 {
		t.Error("the server was reached")
	}

	// A redirect to a denied address is refused too.
	public := mustPolicy(t, []string{"127.0.0.1/32"}, netguard.DefaultDenied())
	redirector := httptest.NewServer(http.RedirectHandler("http://[::1]:9/secret", http.StatusFound))
	defer redirector.Close()
	_, err = public.Client(5*time.Second, false).Get(redirector.URL)
	if !netguard.Blocked(err) {
		t.Errorf("redirect to ::1 = %v, want a netguard refusal", err)
	}

	// Explicitly allowed, the same server is reachable.
	resp, err := mustPolicy(t, []string{"127.0.0.0/8"}, netguard.DefaultDenied()).Client(5*time.Second, false).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Errorf("hits = %d, want 1", hits.Load())
	}
}

func TestBadCIDR(t *testing.T) {
	if _, err := netguard.NewPolicy([]string{"not-a-cidr"}, nil); err == nil {
		t.Error("NewPolicy accepted a bad CIDR")
	}
}

func mustPolicy(t *testing.T, allowed, denied []string) *netguard.Policy {
	t.Helper()
	p, err := netguard.NewPolicy(allowed, denied)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
