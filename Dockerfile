# Multi-stage build: a static binary on a minimal, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags nodynamic -trimpath -ldflags="-s -w" -o /out/media-repo ./cmd/media-repo \
 && mkdir -p /out/data

# docker build --target ffmpeg: the same binary on Debian with ffmpeg, for video stills and
# audio waveforms (thumbnails.types video/* and audio/*).
FROM debian:bookworm-slim AS ffmpeg
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --home-dir /data --no-create-home nonroot
WORKDIR /
COPY --from=build /out/media-repo /usr/local/bin/media-repo
COPY --from=build --chown=65532:65532 /out/data /data
ENV REPO_CONFIG=/data/media-repo.yaml
VOLUME /data
EXPOSE 8000
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/media-repo"]

# The default image: static, no shell, no ffmpeg.
FROM gcr.io/distroless/static-debian12:nonroot
# WORKDIR / makes the default ./data/media-repo.db land in the /data volume.
WORKDIR /
COPY --from=build /out/media-repo /usr/local/bin/media-repo
COPY --from=build --chown=65532:65532 /out/data /data
ENV REPO_CONFIG=/data/media-repo.yaml
VOLUME /data
EXPOSE 8000
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/media-repo"]
