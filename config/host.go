package config

import (
	"net"
	"strings"
)

// NormalizeHost turns a Host or X-Forwarded-Host value into the key homeservers
// are looked up by: the first comma-separated entry, trimmed, without port or
// IPv6 brackets, without a trailing dot, lowercased. Server names compare
// case-insensitively here because DNS does.
func NormalizeHost(host string) string {
	if i := strings.IndexByte(host, ','); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}
