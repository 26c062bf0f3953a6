#!/usr/bin/env bash
# Fails if an inner crate depends on a framework (the domain on anything that does I/O, the
# application on a web framework, database, cache or payment provider), or an adapter on another
# adapter: adapters meet only in `server`, through the application's ports (ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  local crate=$1 pattern=$2
  local found
  found=$(cargo tree -p "$crate" --edges normal --prefix none --format '{p}' | awk '{print $1}' | grep -E "^($pattern)$" | sort -u || true)
  if [ -n "$found" ]; then
    echo "crate $crate must not depend on: $found" >&2
    return 1
  fi
}

check payments-domain 'tokio|actix-web|actix-rt|diesel|diesel-async|redis|deadpool-redis|async-stripe|reqwest|hyper|serde'
check payments-application 'actix-web|actix-rt|diesel|diesel-async|redis|deadpool-redis|async-stripe|reqwest|hyper|opentelemetry.*|tracing-opentelemetry'
# Only `server` knows OpenTelemetry: the others make `tracing` spans, and the driving adapter and
# the webhook sender are handed the functions that carry trace context in and out of HTTP.
check http-actix 'opentelemetry.*|tracing-opentelemetry'
check payments-adapter-webhooks 'opentelemetry.*|tracing-opentelemetry'
# The two driving adapters stand side by side: neither calls the other, and neither knows a
# concrete adapter (ARCHITECTURE.md, "The web UI").
check web 'http-actix|payments-adapter-.*|server|diesel|diesel-async|redis|deadpool-redis|async-stripe|reqwest'
check http-actix 'web|payments-adapter-.*|server'
for manifest in crates/adapter-*/Cargo.toml; do
  adapter=payments-$(basename "$(dirname "$manifest")")
  others=$(cargo tree -p "$adapter" --edges normal --prefix none --format '{p}' | awk '{print $1}' \
    | grep -E '^payments-adapter-' | grep -vx "$adapter" | sort -u || true)
  if [ -n "$others" ]; then
    echo "adapter $adapter must not depend on other adapters: $others" >&2
    exit 1
  fi
done
echo "layers: domain and application are free of frameworks; adapters depend on no other adapter; web and http-actix stand apart"
