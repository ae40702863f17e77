// Package mxid holds the Matrix spec's identifier grammars that every layer
// checks the same way: server names (config, storage keys, federation), media
// IDs and user IDs. It imports only the standard library.
package mxid

import (
	"net/netip"
	"strconv"
	"strings"
)

// MaxMediaIDLength bounds media IDs; the spec sets none, Synapse issues 24 chars.
const MaxMediaIDLength = 255

// ValidMediaID reports whether id is a media ID the spec allows: one or more of
// [A-Za-z0-9_-]. Checked by allow-list before an ID reaches a query or a path.
func ValidMediaID(id string) bool {
	if id == "" || len(id) > MaxMediaIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidServerName reports whether s follows the spec's server-name grammar:
// a DNS name, IPv4 literal or bracketed IPv6 literal, then an optional
// ":port" of one to five digits.
func ValidServerName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		p := port[1:]
		if port[0] != ':' || p == "" || len(p) > 5 {
			return false
		}
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		return true
	}
	return validDNSName(host)
}

// validDNSName accepts 1*255 of [A-Za-z0-9.-], which also covers IPv4 literals.
func validDNSName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidUserID reports whether s is a user ID of the form @localpart:server
// with a valid server name. The localpart is checked loosely (non-empty, no
// colon), as the spec allows historical user IDs.
func ValidUserID(s string) bool {
	local, server, ok := SplitUserID(s)
	return ok && local != "" && ValidServerName(server)
}

// SplitUserID splits @localpart:server at the first colon.
func SplitUserID(s string) (localpart, server string, ok bool) {
	rest, ok := strings.CutPrefix(s, "@")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ":")
}

// UserServer is the server part of a user ID, or "" if it has none.
func UserServer(userID string) string {
	_, server, ok := SplitUserID(userID)
	if !ok {
		return ""
	}
	return server
}

// ParseMXC splits an mxc://server/mediaID URI, checking both parts.
func ParseMXC(uri string) (server, mediaID string, ok bool) {
	rest, found := strings.CutPrefix(uri, "mxc://")
	if !found {
		return "", "", false
	}
	server, mediaID, found = strings.Cut(rest, "/")
	if !found || !ValidServerName(server) || !ValidMediaID(mediaID) {
		return "", "", false
	}
	return server, mediaID, true
}

// MXC is the mxc:// URI of server's mediaID.
func MXC(server, mediaID string) string { return "mxc://" + server + "/" + mediaID }
