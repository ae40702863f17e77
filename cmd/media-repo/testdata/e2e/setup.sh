#!/usr/bin/env bash
# Installs what the end-to-end suite needs, each only when missing: nginx-light
# and caddy from Debian, Dendrite v0.13.8 built with `go install` into a cache
# that later runs on this machine reuse, SeaweedFS (the S3 server) and Traefik
# v3 built through wrapper modules into the same cache, and matrix-js-sdk from
# npm (lockfile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MEDIAREPO_E2E_CACHE:-$HOME/.cache/mediarepo-e2e}
dendrite_dir="$cache/dendrite-v0.13.8"

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v caddy >/dev/null || need+=(caddy)
command -v ffmpeg >/dev/null || need+=(ffmpeg) # video and audio thumbnails, and their inputs
if [ ${#need[@]} -gt 0 ]; then
  echo "e2e: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x "$dendrite_dir/dendrite" ] || [ ! -x "$dendrite_dir/generate-config" ] || [ ! -x "$dendrite_dir/generate-keys" ]; then
  echo "e2e: building Dendrite v0.13.8 (about two minutes, once)"
  mkdir -p "$dendrite_dir"
  (cd /tmp && GOBIN="$dendrite_dir" go install \
    github.com/matrix-org/dendrite/cmd/dendrite@v0.13.8 \
    github.com/matrix-org/dendrite/cmd/generate-config@v0.13.8 \
    github.com/matrix-org/dendrite/cmd/generate-keys@v0.13.8)
fi

bash "$here/../../../../storage/s3/testdata/build-seaweedfs.sh"
bash "$here/build-traefik.sh"

if [ ! -d "$here/node_modules/matrix-js-sdk" ]; then
  echo "e2e: installing matrix-js-sdk"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "e2e: dependencies ready"
