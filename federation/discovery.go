package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mediarepo/mediarepo/mxid"
)

// Target is where requests for a server name go.
type Target struct {
	Addr    string // host:port to dial
	TLSName string // name the certificate must be valid for
	Host    string // Host header
}

// How long well-known answers are remembered (spec: default 24 h, at most
// 48 h; failures briefly).
const (
	wellKnownDefaultTTL = 24 * time.Hour
	wellKnownMaxTTL     = 48 * time.Hour
	wellKnownFailureTTL = 10 * time.Minute
	wellKnownMaxBytes   = 64 << 10
)

// Resolver finds the Target of a server name by the spec's server discovery:
// IP literal, explicit port, /.well-known/matrix/server, SRV
// _matrix-fed._tcp then _matrix._tcp, then port 8448. Overrides skip it all.
type Resolver struct {
	client    *http.Client // fetches well-known; must be guarded
	dns       *net.Resolver
	overrides map[string]string // server name -> host:port

	cache *lru.Cache[string, wellKnown]
	now   func() time.Time
}

// wellKnownEntries bounds the discovery answers kept.
const wellKnownEntries = 10_000

type wellKnown struct {
	server  string // m.server, "" when there was none
	expires time.Time
}

// NewResolver returns a Resolver; overrides map server names to host:port.
func NewResolver(client *http.Client, dns *net.Resolver, overrides map[string]string) *Resolver {
	cache, _ := lru.New[string, wellKnown](wellKnownEntries)
	return &Resolver{client: client, dns: dns, overrides: overrides, cache: cache, now: time.Now}
}

// Resolve finds where to send requests for serverName.
func (r *Resolver) Resolve(ctx context.Context, serverName string) (Target, error) {
	if !mxid.ValidServerName(serverName) {
		return Target{}, fmt.Errorf("resolve %q: not a server name", serverName)
	}
	host, port := splitServerName(serverName)
	if addr, ok := r.overrides[serverName]; ok {
		return Target{Addr: addr, TLSName: host, Host: serverName}, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return Target{Addr: net.JoinHostPort(ip.String(), portOr(port, "8448")), TLSName: host, Host: serverName}, nil
	}
	if port != "" {
		return Target{Addr: net.JoinHostPort(host, port), TLSName: host, Host: serverName}, nil
	}
	if delegated := r.wellKnown(ctx, host); delegated != "" {
		dhost, dport := splitServerName(delegated)
		if _, err := netip.ParseAddr(dhost); err == nil || dport != "" {
			return Target{Addr: net.JoinHostPort(dhost, portOr(dport, "8448")), TLSName: dhost, Host: delegated}, nil
		}
		if addr, ok := r.srv(ctx, dhost); ok {
			return Target{Addr: addr, TLSName: dhost, Host: dhost}, nil
		}
		return Target{Addr: net.JoinHostPort(dhost, "8448"), TLSName: dhost, Host: dhost}, nil
	}
	if addr, ok := r.srv(ctx, host); ok {
		return Target{Addr: addr, TLSName: host, Host: host}, nil
	}
	return Target{Addr: net.JoinHostPort(host, "8448"), TLSName: host, Host: host}, nil
}

// wellKnown returns the delegated server name of host, or "" — from cache
// when fresh.
func (r *Resolver) wellKnown(ctx context.Context, host string) string {
	now := r.now()
	wk, ok := r.cache.Get(host)
	if ok && now.Before(wk.expires) {
		return wk.server
	}
	server, ttl := r.fetchWellKnown(ctx, host)
	r.cache.Add(host, wellKnown{server: server, expires: now.Add(ttl)})
	return server
}

func (r *Resolver) fetchWellKnown(ctx context.Context, host string) (string, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", wellKnownFailureTTL
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", wellKnownFailureTTL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", wellKnownFailureTTL
	}
	var body struct {
		Server string `json:"m.server"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, wellKnownMaxBytes)).Decode(&body); err != nil ||
		!mxid.ValidServerName(body.Server) {
		return "", wellKnownFailureTTL
	}
	return body.Server, cacheTTL(resp.Header.Get("Cache-Control"))
}

// cacheTTL reads max-age, defaulting to 24 h and capped at 48 h.
func cacheTTL(cacheControl string) time.Duration {
	for _, d := range strings.Split(cacheControl, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			if s, err := strconv.Atoi(v); err == nil && s >= 0 {
				return min(time.Duration(s)*time.Second, wellKnownMaxTTL)
			}
		}
	}
	return wellKnownDefaultTTL
}

// srv looks up _matrix-fed._tcp then the deprecated _matrix._tcp.
func (r *Resolver) srv(ctx context.Context, host string) (string, bool) {
	for _, service := range []string{"matrix-fed", "matrix"} {
		_, records, err := r.dns.LookupSRV(ctx, service, "tcp", host)
		if err == nil && len(records) > 0 {
			return net.JoinHostPort(strings.TrimSuffix(records[0].Target, "."), strconv.Itoa(int(records[0].Port))), true
		}
	}
	return "", false
}

// splitServerName splits "host[:port]" ("[v6]:port" too) without brackets.
func splitServerName(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
}

func portOr(port, dflt string) string {
	if port == "" {
		return dflt
	}
	return port
}
