// Package netguard keeps outbound connections (URL previews, federation) away
// from internal networks: every address actually dialled, after
// DNS and after every redirect, is checked against CIDR deny and allow lists,
// so DNS rebinding and redirects to 127.0.0.1 get nowhere. It imports nothing
// from this module.
package netguard

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrDisallowed is returned (wrapped) for a connection to a refused address.
var ErrDisallowed = errors.New("address not allowed")

// DefaultDenied are the networks no outbound request may reach unless an
// allow entry at least as specific names them: loopback, private, link-local,
// CGNAT, multicast, documentation, benchmarking and reserved ranges.
func DefaultDenied() []string {
	return []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"255.255.255.255/32",
		"::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
		"fec0::/10", "ff00::/8",
	}
}

// Policy decides which IP addresses may be dialled.
type Policy struct {
	allow, deny []netip.Prefix
}

// NewPolicy parses the lists. An address in a denied network is refused
// unless an allowed network at least as specific contains it (so
// "127.0.0.0/8" in allowed overrides the default denial, "0.0.0.0/0" does
// not); when allowed is not empty, an address must be in it.
func NewPolicy(allowed, denied []string) (*Policy, error) {
	p := &Policy{}
	var err error
	if p.allow, err = parse(allowed); err != nil {
		return nil, fmt.Errorf("allowed networks: %w", err)
	}
	if p.deny, err = parse(denied); err != nil {
		return nil, fmt.Errorf("disallowed networks: %w", err)
	}
	return p, nil
}

func parse(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// Allowed reports whether ip may be dialled. IPv4 addresses hidden in IPv6
// forms (IPv4-mapped, IPv4-compatible, 6to4, NAT64) are checked as the IPv4
// address they reach as well.
func (p *Policy) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !p.allowedOne(ip) {
		return false
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return p.allowedOne(v4)
	}
	return true
}

func (p *Policy) allowedOne(ip netip.Addr) bool {
	denyBits, allowBits := longest(p.deny, ip), longest(p.allow, ip)
	if len(p.allow) > 0 && allowBits < 0 {
		return false
	}
	return denyBits < 0 || allowBits >= denyBits
}

// longest returns the prefix length of the most specific network containing
// ip, or -1.
func longest(nets []netip.Prefix, ip netip.Addr) int {
	best := -1
	for _, n := range nets {
		if n.Contains(ip) && n.Bits() > best {
			best = n.Bits()
		}
	}
	return best
}

// embeddedIPv4 extracts the IPv4 address an IPv6 address routes to, for the
// forms that carry one: IPv4-compatible (::a.b.c.d), 6to4 (2002:AABB:CCDD::)
// and NAT64 (64:ff9b::a.b.c.d, 64:ff9b:1::/48).
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // NAT64
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case isZero(b[:12]) && !isZero(b[12:]): // IPv4-compatible (deprecated)
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	}
	return netip.Addr{}, false
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control function that refuses disallowed addresses
// right before the socket connects: the address checked is the one dialled.
func (p *Policy) Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if !p.Allowed(ip) {
		return fmt.Errorf("dial %s: %w", address, ErrDisallowed)
	}
	return nil
}

// Dialer returns a net.Dialer that refuses disallowed addresses.
func (p *Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, Control: p.Control}
}

// Client returns an http.Client that dials only allowed addresses, ignores
// proxy environment variables (a proxy would dial for us, unchecked), and
// gives up after timeout. insecureTLS skips certificate checks.
func (p *Policy) Client(timeout time.Duration, insecureTLS bool) *http.Client {
	dialer := p.Dialer()
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecureTLS}, //nolint:gosec // operator's choice
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Blocked reports whether err is a refusal by a Policy.
func Blocked(err error) bool { return errors.Is(err, ErrDisallowed) }
