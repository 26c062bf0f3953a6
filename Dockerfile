# The `server` binary on a slim base, as a non-root user that writes nothing outside /tmp (so the
# container runs with a read-only root file system and a tmpfs on /tmp).
#
# The Rust image's version is the workspace's `rust-version` (Cargo.toml), the oldest Rust that
# builds every locked dependency; scripts/check-msrv.sh keeps the two honest.
ARG RUST_VERSION=1.89

# The workspace's manifests and lock file, with every target's source replaced by a stub: it
# changes only when a manifest does, so the dependency layer below is rebuilt only then.
FROM rust:${RUST_VERSION}-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN mkdir -p /skeleton \
 && cargo metadata --no-deps --offline --format-version 1 \
    | grep -o '"src_path":"[^"]*"' | cut -d'"' -f4 | sed "s|^$PWD/||" | sort -u >/tmp/targets \
 && find . -name Cargo.toml -not -path './target/*' -exec cp --parents {} /skeleton/ \; \
 && cp Cargo.lock /skeleton/ \
 && while read -r target; do \
      mkdir -p "/skeleton/$(dirname "$target")"; \
      printf '#![allow(dead_code)]\nfn main() {}\n' >"/skeleton/$target"; \
    done </tmp/targets

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies: cached in this layer until Cargo.toml or Cargo.lock change.
COPY --from=skeleton /skeleton ./
RUN cargo build --release --locked -p server
# The workspace's own code. Its files may be older than the stubs built above, so they are
# touched for cargo to see them as changed.
COPY . .
RUN find crates examples tests -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin payments
COPY --from=build /src/target/release/server /usr/local/bin/server
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
ENV BIND_ADDRESS=0.0.0.0:8080
EXPOSE 8080
# Readiness over bash's /dev/tcp: the image needs no HTTP client. Compose uses it to order the
# start-up; Kubernetes ignores it and uses the probes of its Deployment.
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${BIND_ADDRESS##*:} && printf 'GET /health/ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/server"]
CMD ["serve"]
