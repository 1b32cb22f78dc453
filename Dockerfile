# Switchboard: a static binary on distroless, running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t switchboard .
#   docker run -p 8080:8080 -v switchboard-data:/data switchboard
#
# Embedded mode (no DATABASE_URL) keeps its SQLite database in the /data
# volume; set DATABASE_URL, SWITCHBOARD_JWT_SECRET, SWITCHBOARD_APP_KEY and
# SWITCHBOARD_APP_SECRET for production (see deploy/README.md).

# The Go of go.mod's go directive.
ARG GO_VERSION=1.26.8

# The build runs on the builder's own platform and cross-compiles for the
# target one (docker buildx build --platform linux/amd64,linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version `switchboard version` prints (the Makefile's VERSION).
ARG VERSION=dev
# CGO_ENABLED=0: a static binary (the SQLite driver, modernc.org/sqlite, is
# pure Go). /out/data becomes the volume's initial, non-root-owned content.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
        go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/switchboard ./cmd/switchboard \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchboard /usr/local/bin/switchboard
COPY --from=build --chown=65532:65532 /out/data /data
# nonroot is uid/gid 65532 in distroless.
USER 65532:65532
ENV SWITCHBOARD_ADDR=:8080 \
    SWITCHBOARD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/switchboard", "serve"]
