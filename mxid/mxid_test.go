package mxid_test

import (
	"strings"
	"testing"

	"github.com/mediarepo/mediarepo/mxid"
)

func TestValidMediaID(t *testing.T) {
	tests := map[string]bool{
		"abcDEF123_-x":               true,
		"a":                          true,
		"":                           false,
		"../../etc/passwd":           false,
		"abc/def":                    false,
		"abc%2Fdef":                  false,
		"abc=":                       false,
		"ünïcode":                    false,
		"abc def":                    false,
		strings.Repeat("a", 255):     true,
		strings.Repeat("a", 256):     false,
		"abc\x00":                    false,
		"QmFzZTY0VXJsU2FmZS1fYWJj-_": true,
	}
	for id, want := range tests {
		if got := mxid.ValidMediaID(id); got != want {
			t.Errorf("ValidMediaID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestValidServerName(t *testing.T) {
	tests := map[string]bool{
		"matrix.org":             true,
		"matrix.org:8888":        true,
		"1.2.3.4:1234":           true,
		"[1234:5678::abcd]:5678": true,
		"[::1]":                  true,
		"localhost":              true,
		"":                       false,
		"matrix.org:":            false,
		"matrix.org:123456":      false,
		"matrix.org:99999":       false,
		"matrix.org:-1":          false,
		"[::1":                   false,
		"[1.2.3.4]":              false,
		"[::1]x":                 false,
		"::1":                    false,
		"exa mple.org":           false,
		"example.org/../../etc":  false,
		"example.org%2F..":       false,
		"user@example.org":       false,
		strings.Repeat("a", 256): false,
		"[fe80::1%25eth0]":       false,
		"example.org:80:80":      false,
		"https://example.org":    false,
	}
	for s, want := range tests {
		if got := mxid.ValidServerName(s); got != want {
			t.Errorf("ValidServerName(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzValidIDs(f *testing.F) {
	for _, s := range []string{"matrix.org:8448", "[::1]:80", "abc_-", "../x", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Whatever passes must be safe to use as a single path segment.
		if mxid.ValidMediaID(s) && strings.ContainsAny(s, "/\\.%\x00") {
			t.Fatalf("ValidMediaID accepted %q", s)
		}
		if mxid.ValidServerName(s) && strings.ContainsAny(s, "/\\%?#@ \x00") {
			t.Fatalf("ValidServerName accepted %q", s)
		}
	})
}
