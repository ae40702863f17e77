package config_test

import (
	"testing"

	"github.com/mediarepo/mediarepo/config"
)

func TestNormalizeHost(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"plain":            {"example.org", "example.org"},
		"mixed case port":  {"Example.ORG:443", "example.org"},
		"ipv6 with port":   {"[::1]:8008", "::1"},
		"ipv6 no port":     {"[::1]", "::1"},
		"ipv4 with port":   {"127.0.0.1:8000", "127.0.0.1"},
		"forwarded list":   {"a, b", "a"},
		"forwarded spaces": {"  matrix.example.com:8448 , evil.com", "matrix.example.com"},
		"trailing dot":     {"example.org.", "example.org"},
		"empty":            {"", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := config.NormalizeHost(tt.in); got != tt.want {
				t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.org", "Example.ORG:443", "[::1]:8008", "a, b", "[", "]:", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := config.NormalizeHost(in)
		// Normalising twice changes nothing, and the result never carries a port
		// separator list or upper case that would make two spellings differ.
		if again := config.NormalizeHost(got); again != got && !isIPv6ish(got) {
			t.Fatalf("NormalizeHost not idempotent: %q -> %q -> %q", in, got, again)
		}
		for _, r := range got {
			if r >= 'A' && r <= 'Z' {
				t.Fatalf("NormalizeHost(%q) = %q has upper case", in, got)
			}
			if r == ',' {
				t.Fatalf("NormalizeHost(%q) = %q has a comma", in, got)
			}
		}
	})
}

// isIPv6ish reports whether s holds colons: a bare IPv6 literal such as "::1"
// may legitimately be split again as host:port, so idempotence is not promised.
func isIPv6ish(s string) bool {
	for _, r := range s {
		if r == ':' {
			return true
		}
	}
	return false
}
