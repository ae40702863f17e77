# mediarepo. `make run` starts a server that needs nothing else; `make test` runs every test.
GO ?= go
BIN := bin/media-repo
# nodynamic keeps the HEIC and AVIF decoders (gen2brain/heic, gen2brain/avif) on their
# WebAssembly build, run by wazero in the process, even where the system has libheif or
# libavif: every build and test of the repo uses it, as the Dockerfile does.
TAGS := nodynamic

.PHONY: build run test test-deps e2e faults fuzz bench bench-load bench-thumbnails docker clean

build:
	$(GO) build -tags $(TAGS) -trimpath -o $(BIN) ./cmd/media-repo

# Runs with data/media-repo.yaml, created from config.sample.yaml on first use:
# SQLite and blobs under ./data, listening on 127.0.0.1:8000.
run: build
	@[ -f data/media-repo.yaml ] || ./$(BIN) init -config data/media-repo.yaml
	./$(BIN) -config data/media-repo.yaml

# Every test, with the race detector, and the Kubernetes manifests' checks (deploy/, a module
# of its own). Needs PostgreSQL (MEDIAREPO_TEST_POSTGRES,
# default postgres://postgres@127.0.0.1:5432/test); MEDIAREPO_TEST_SKIP_POSTGRES=1 skips those tests.
test: test-deps
	$(GO) vet -tags $(TAGS) ./...
	$(GO) test -tags $(TAGS) -race -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...

# What the tests need beyond Go, installed when missing: libjpeg-turbo's cjpeg (the
# JPEG shapes image/jpeg cannot write: progressive, other subsampling, restart markers),
# clamav-daemon (the tests run clamd with a signature of their own), libheif's heif-enc (HEIC
# test inputs), ffmpeg (video stills and audio waveforms, and the APNG, video and audio test
# inputs), libwebp's img2webp (animated WebP inputs), Chromium (the console's tests drive it with
# chromedp), and SeaweedFS, the
# S3 server the S3 datastore is tested on (built once into ~/.cache/mediarepo-e2e, about
# fifteen minutes the first time).
test-deps:
	@command -v cjpeg >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjpeg-turbo-progs >/dev/null)
	@[ -x /usr/sbin/clamd ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null)
	@command -v heif-enc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libheif-examples >/dev/null)
	@command -v ffmpeg >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null)
	@command -v img2webp >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends webp >/dev/null)
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null)
	@bash storage/s3/testdata/build-seaweedfs.sh

# The fault suite: the real binary killed at every point of an upload, PostgreSQL (a
# cluster of its own) restarted under load, a datastore full and read-only (tmpfs),
# SIGTERM with uploads in flight, slow clients, a failing homeserver, hostile images
# against the memory bound. Needs root. Results: docs/security.md.
faults: test-deps
	$(GO) test -tags faults,$(TAGS) -count=1 -timeout 20m -run TestFault -v ./cmd/media-repo/

# The end-to-end suite: Dendrite, nginx and Caddy (configured from docs/), PostgreSQL
# and SQLite, mautrix-go and matrix-js-sdk, all on 127.0.0.1. setup.sh installs what is
# missing (apt, go install, npm ci); the Dendrite build is cached in ~/.cache/mediarepo-e2e.
e2e:
	bash cmd/media-repo/testdata/e2e/setup.sh
	$(GO) test -tags e2e,$(TAGS) -count=1 -timeout 15m -run TestE2E ./cmd/media-repo/

# A short run of every fuzz target.
fuzz:
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzNormalizeHost -fuzztime=15s ./config/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzValidIDs -fuzztime=15s ./mxid/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzContentDisposition -fuzztime=15s ./api/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzGenerate -fuzztime=15s ./thumbnails/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzBMFF -fuzztime=15s ./thumbnails/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzAPNG -fuzztime=15s ./thumbnails/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzContainers -fuzztime=15s ./thumbnails/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzDecode -fuzztime=15s ./thumbnails/jpegscale/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzDecode -fuzztime=15s ./thumbnails/pngscale/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzParseXMatrix -fuzztime=15s ./federation/
	$(GO) test -tags $(TAGS) -run=^$$ -fuzz=FuzzCanonicalJSON -fuzztime=15s ./federation/

# Go benchmarks of the hot paths.
bench:
	$(GO) test -tags $(TAGS) -run=^$$ -bench=. -benchmem ./api/ ./thumbnails/...

# wrk load against the real server and a bare http.ServeContent reference, in one run.
# BASELINE=<git revision> also measures that revision's build in the same rounds.
bench-load:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(GO) run -tags $(TAGS) ./cmd/media-repo-bench $(if $(BASELINE),-baseline $(BASELINE))

# The first thumbnail after an upload, CPU and memory per uploaded photo, with
# image/jpeg + imaging and vipsthumbnail as references in the same rounds.
# BASELINE=<git revision> also measures that revision's build.
bench-thumbnails:
	@command -v vipsthumbnail >/dev/null || (apt-get update -qq && apt-get install -y -qq libvips-tools)
	$(GO) run -tags $(TAGS) ./cmd/media-repo-bench -thumbnails -rounds 5 $(if $(BASELINE),-baseline $(BASELINE))

docker:
	docker build -t mediarepo .

clean:
	rm -rf bin
