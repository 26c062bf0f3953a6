#!/usr/bin/env bash
# Fails if an inner crate depends on a framework: the domain on anything that does I/O, the
# application on a web framework, database, cache or payment provider (ARCHITECTURE.md).
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

check domain 'tokio|actix-web|actix-rt|diesel|diesel-async|redis|deadpool-redis|async-stripe|reqwest|hyper|serde'
check application 'actix-web|actix-rt|diesel|diesel-async|redis|deadpool-redis|async-stripe|reqwest|hyper'
echo "layers: domain and application are free of frameworks"
