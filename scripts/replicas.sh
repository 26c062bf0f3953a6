#!/usr/bin/env bash
# The topology of docker-compose.yml without Docker: the migrations run once (`server migrate`),
# three replicas start with RUN_MIGRATIONS=false on one PostgreSQL database and one Redis, and
# HAProxy runs deploy/compose/haproxy.cfg's frontend and backend with the replicas' local
# addresses in place of Docker's DNS. Then:
# - the load generator buys through the proxy and checks that the books are exact;
# - every replica served some of the purchases (round robin);
# - the proxy refuses /metrics;
# - a replica that stops is taken out by the health check, and purchases go on, books exact.
#
# Part of `make test`. Needs PostgreSQL (DATABASE_URL's server, default
# postgres://postgres@127.0.0.1:5432) and Redis (REDIS_URL, default redis://127.0.0.1:6379);
# installs Debian's haproxy if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
target=${CARGO_TARGET_DIR:-target}
database="payments_replicas_$$"
work=$(mktemp -d)
pids=()

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
psql_admin() { psql "$admin_url" -v ON_ERROR_STOP=1 -q "$@"; }

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql_admin -c "DROP DATABASE IF EXISTS ${database} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v haproxy >/dev/null 2>&1; then
  echo "replicas: installing haproxy (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
fi

# Separately, so that each is built with the features it has in the test build.
cargo build --quiet -p server
cargo build --quiet -p loadgen
psql_admin -c "CREATE DATABASE ${database}"
database_url="${admin_url%/*}/${database}"
DATABASE_URL="$database_url" "$target/debug/server" migrate >"$work/migrate.log" 2>&1

export ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD='replicas password 1'
ports=()
for replica in 1 2 3; do
  port=$(free_port)
  ports+=("$port")
  DATABASE_URL="$database_url" RUN_MIGRATIONS=false BIND_ADDRESS="127.0.0.1:${port}" \
    REDIS_URL="$redis_url" REDIS_KEY_PREFIX="replicas-$$:" TRUST_FORWARDED_FOR=true \
    JWT_SECRET=replicas-signing-key-of-at-least-32-bytes RATE_LIMIT_ENABLED=false BCRYPT_COST=4 \
    DATABASE_POOL_MAX=8 WORKERS=1 LOG_FORMAT=json RUST_LOG=warn \
    "$target/debug/server" serve >"$work/server-$replica.log" 2>&1 &
  pids+=($!)
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null || { echo "a replica did not start:"; cat "$work"/server-*.log; exit 1; }
done

# deploy/compose/haproxy.cfg with the replicas' addresses instead of Docker's DNS.
proxy_port=$(free_port)
python3 - deploy/compose/haproxy.cfg "$work/haproxy.cfg" "$proxy_port" "${ports[@]}" <<'PY'
import re
import sys

source, out, proxy_port, *ports = sys.argv[1:]
text = open(source).read()
text = re.sub(r"\nresolvers docker\n(  .*\n)+", "\n", text)
text = text.replace(" resolvers docker init-addr none", "").replace("inter 2s", "inter 200ms")
text = text.replace("bind :8080", f"bind 127.0.0.1:{proxy_port}")
servers = "".join(f"  server replica{i} 127.0.0.1:{port}\n" for i, port in enumerate(ports, 1))
text, count = re.subn(r"  server-template .*\n", servers, text)
assert count == 1, "haproxy.cfg has no server-template line"
text = text.replace("log stdout format raw local0 info", "log stderr format raw local0 warning")
open(out, "w").write(text)
PY
haproxy -c -q -f "$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
proxy="http://127.0.0.1:${proxy_port}"
for _ in $(seq 1 100); do curl -fs "$proxy/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done

served() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^http_requests_total/ && /route="\/api\/v1\/orders"/ { n += $NF } END { print n + 0 }'; }

echo "replicas: purchases through HAProxy in front of three replicas"
"$target/debug/loadgen" --url "$proxy" --scenario purchase --clients 6 --warmup 0 --duration 30 --requests 300 \
  --merchants 4 --products-per-merchant 2 | tail -n 3
for port in "${ports[@]}"; do
  count=$(served "$port")
  echo "replicas: the replica on port $port served $count order requests"
  [[ "$count" -gt 0 ]] || { echo "a replica got no purchases: the proxy does not spread them"; exit 1; }
done

status=$(curl -s -o /dev/null -w '%{http_code}' "$proxy/metrics")
[[ "$status" == 404 ]] || { echo "the proxy served /metrics ($status)"; exit 1; }

echo "replicas: one replica stops; the health check takes it out and purchases go on"
kill "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
for _ in $(seq 1 50); do
  grep -q "replica3 is DOWN" "$work/haproxy.log" && break
  sleep 0.1
done
grep -q "replica3 is DOWN" "$work/haproxy.log" || { echo "HAProxy did not mark the stopped replica down:"; cat "$work/haproxy.log"; exit 1; }
"$target/debug/loadgen" --url "$proxy" --scenario purchase --clients 6 --warmup 0 --duration 30 --requests 200 \
  --merchants 4 --products-per-merchant 2 | tail -n 3
echo "replicas: ok"
