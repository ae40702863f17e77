#!/usr/bin/env bash
# Builds Traefik v3.7.13 once into the e2e cache. `go install` refuses it (its go.mod has
# replace directives), so it is built through a wrapper module with the same replaces, and:
# - its in-repository module github.com/traefik/traefik/dynamic/ext, which the module zip
#   leaves out, is stood in for by an empty one (no extensions);
# - lego's DNS-provider registry is stubbed: the providers' cloud SDKs are not served by the
#   module proxy here, and the suite uses no ACME;
# - github.com/containous/go-http-auth (its fork of abbot/go-http-auth) is not served either:
#   abbot's v0.4.0 is used, with the two functions the fork adds (CheckSecret and
#   DigestAuth.RequireAuthStale) written out from abbot's own code.
set -euo pipefail
version=v3.7.13
lego=v5.4.1
cache=${MEDIAREPO_E2E_CACHE:-$HOME/.cache/mediarepo-e2e}
dir="$cache/traefik-$version"
[ -x "$dir/traefik" ] && exit 0
echo "e2e: building Traefik $version (about ten minutes, once) into $dir"
rm -rf "$dir/src"
mkdir -p "$dir/src/ext"
cd "$dir/src"
cat > ext/go.mod <<'MOD'
module github.com/traefik/traefik/dynamic/ext

go 1.24
MOD
cat > ext/ext.go <<'SRC'
// Package ext stands in for Traefik's in-repository extension module.
package ext

// HTTP adds nothing to the dynamic HTTP configuration.
type HTTP struct{}

// Router adds nothing to a router.
type Router struct{}
SRC
lego_dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/go-acme/lego/v5@$lego" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp -r "$lego_dir" lego
chmod -R u+w lego
rm -f lego/providers/dns/dns_providers_test.go
cat > lego/providers/dns/zz_gen_dns_providers.go <<'SRC'
// Stubbed for mediarepo's end-to-end suite: no DNS providers.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName refuses every provider.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS provider %q is not built in", name)
}
SRC
auth_dir=$(GOFLAGS=-mod=mod go mod download -json github.com/abbot/go-http-auth@v0.4.0 | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp -r "$auth_dir" goauth
chmod -R u+w goauth
[ -f goauth/go.mod ] || printf 'module github.com/abbot/go-http-auth\n\ngo 1.13\n' > goauth/go.mod
cat > goauth/fork.go <<'SRC'
package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckSecret reports whether password matches secret, an htpasswd hash.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale is RequireAuth telling the client its nonce was stale.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	if len(a.clients) > a.ClientCacheSize+a.ClientCacheTolerance {
		a.Purge(a.ClientCacheTolerance * 2)
	}
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0, last_seen: time.Now().UnixNano()}
	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate,
		fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
			a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
	w.Write([]byte(a.Headers.V().UnauthResponse))
}
SRC
cat > go.mod <<MOD
module traefikwrapper

go 1.26

require github.com/traefik/traefik/v3 $version

replace (
	github.com/traefik/traefik/dynamic/ext => ./ext
	github.com/go-acme/lego/v5 => ./lego
	github.com/abbot/go-http-auth => ./goauth
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
)

exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
MOD
cat > tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
SRC
GOFLAGS=-mod=mod go mod tidy
GOFLAGS=-mod=mod go build -o "$dir/traefik.tmp" github.com/traefik/traefik/v3/cmd/traefik
mv "$dir/traefik.tmp" "$dir/traefik"
