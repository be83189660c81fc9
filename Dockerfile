# tiendo's six binaries on a slim Debian: `tiendo` (up, migrate, status, publish, replay,
# deadletters) and one binary per service. docker-compose.yml runs one service per container.
#
#   docker build -t tiendo:local .
#
# RUST_VERSION: the toolchain the project is built and tested with.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
# make: tikv-jemalloc-sys builds jemalloc, every binary's allocator, with its own makefile
# (the slim image has gcc but not make).
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release build of the six binaries only (not the tests). protox compiles proto/ in pure
# Rust and TLS is rustls, so no protoc or OpenSSL is needed.
RUN cargo build --release --locked \
      -p tiendo -p tiendo-ingest -p tiendo-validation -p tiendo-aggregation -p tiendo-alerting -p tiendo-web \
 && mkdir /out \
 && cp target/release/tiendo target/release/tiendo-ingest target/release/tiendo-validation \
       target/release/tiendo-aggregation target/release/tiendo-alerting target/release/tiendo-web /out/

FROM debian:bookworm-slim
# curl: the container health check asks /readyz.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/tiendo tiendo
COPY --from=builder /out/ /usr/local/bin/
USER tiendo
WORKDIR /var/lib/tiendo
ENV TIENDO__HTTP__LISTEN=0.0.0.0:9464 \
    RUST_LOG=info
EXPOSE 9464
CMD ["tiendo", "--help"]
