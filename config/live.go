package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
)

// Live is the configuration in force. A reload (SIGHUP) swaps in a new one
// atomically; readers take Get once per request and keep using that.
type Live struct {
	p atomic.Pointer[Config]
}

// NewLive returns c in force.
func NewLive(c *Config) *Live {
	l := &Live{}
	l.p.Store(c)
	return l
}

// Get is the configuration in force.
func (l *Live) Get() *Config { return l.p.Load() }

// Reload puts next in force as far as a running process can follow it:
// who may do what (homeservers, admins, shared secret, quarantine), token
// and host handling, and the log level change at once; everything else keeps
// its old value until a restart. It returns the key paths of what changed
// and waits for that restart.
func (l *Live) Reload(next *Config) (restart []string) {
	old := l.Get()
	applied := *old
	applied.Homeservers = make([]Homeserver, len(next.Homeservers))
	for i, hs := range next.Homeservers {
		// Signing keys are loaded at start-up: a new or changed key path
		// waits for a restart; the homeserver itself is served at once.
		hs.SigningKeyPath = ""
		if prev, ok := old.Homeserver(hs.Name); ok {
			hs.SigningKeyPath = prev.SigningKeyPath
		}
		applied.Homeservers[i] = hs
	}
	applied.Admins = next.Admins
	applied.SharedSecretAuth = next.SharedSecretAuth
	applied.AccessTokens.AllowQueryParameter = next.AccessTokens.AllowQueryParameter
	thumbnailPath := old.Quarantine.ThumbnailPath // loaded at start-up
	applied.Quarantine = next.Quarantine
	applied.Quarantine.ThumbnailPath = thumbnailPath
	applied.Archiving = next.Archiving
	applied.Repo.LogLevel = next.Repo.LogLevel
	applied.Repo.UseForwardedHost = next.Repo.UseForwardedHost
	applied.Repo.TrustAnyForwardedAddress = next.Repo.TrustAnyForwardedAddress
	applied.warnings = next.warnings
	applied.notices = next.notices
	applied.buildHosts()
	l.p.Store(&applied)
	return differences(reflect.ValueOf(applied), reflect.ValueOf(*next), "")
}

// differences lists the yaml key paths where a and b, two values of one
// type, differ; structs (and lists of them of one length) are compared
// field by field, anything else whole.
func differences(a, b reflect.Value, path string) []string {
	if a.Kind() == reflect.Slice && a.Type().Elem().Kind() == reflect.Struct && a.Len() == b.Len() {
		var out []string
		for i := range a.Len() {
			out = append(out, differences(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{path}
	}
	var out []string
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		sub := name
		if path != "" {
			sub = path + "." + name
		}
		out = append(out, differences(a.Field(i), b.Field(i), sub)...)
	}
	return out
}
