#!/usr/bin/env bash
# Builds SeaweedFS's weed (the S3 server the tests run on loopback) once into
# the cache later runs on this machine reuse. `go install` refuses it because
# its go.mod has replace directives, so it is built through a small wrapper
# module with the same replace.
set -euo pipefail
version=v0.0.0-20261109003541-7506e5f91cd6
cache=${MEDIAREPO_E2E_CACHE:-$HOME/.cache/mediarepo-e2e}
dir="$cache/seaweedfs-$version"
[ -x "$dir/weed" ] && exit 0
echo "building SeaweedFS weed (about fifteen minutes on a fresh machine, once) into $dir"
mkdir -p "$dir/src"
cd "$dir/src"
cat > go.mod <<MOD
module seaweedfswrapper

go 1.26

require github.com/seaweedfs/seaweedfs $version

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
cat > tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
SRC
GOFLAGS=-mod=mod go mod tidy
go build -o "$dir/weed.tmp" github.com/seaweedfs/seaweedfs/weed
mv "$dir/weed.tmp" "$dir/weed"
