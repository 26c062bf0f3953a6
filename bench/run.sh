#!/usr/bin/env bash
# `make bench`: the raw-SQL baseline (pgbench) and the service's scenarios (loadgen), with the same
# number of clients, on this machine's PostgreSQL and Redis; then docs/benchmarks.md and its plot.
# Every loadgen run checks the books afterwards and fails loudly if they do not add up.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${BENCH_CLIENTS:-32}
DURATION=${BENCH_DURATION:-10}
PRODUCTS=256
export PGHOST=127.0.0.1 PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
REDIS=${REDIS_URL:-redis://127.0.0.1:6379}
OUT=bench/out
rm -rf "$OUT" && mkdir -p "$OUT"
# The code measured, so that a report regenerated later still names it.
git rev-parse --short HEAD > "$OUT/commit"

scripts/services.sh
python3 -c "import matplotlib" 2> /dev/null || python3 -m pip install --quiet --disable-pip-version-check matplotlib
# One cargo invocation builds the server, the load generator and the criterion benches, so that
# they share one set of dependencies. No scenario reaches a card gateway, so the server is built
# without Stripe's generated API types, about a third of a release build (docs/benchmarks.md).
cargo build --release --no-default-features --bins --benches --message-format json-render-diagnostics \
  -p server -p loadgen -p payments-domain -p payments-adapter-auth -p payments-stripe-signature > "$OUT/build.json"
# Wherever cargo puts its artefacts (CARGO_TARGET_DIR, a config file, or ./target).
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c "import json, sys; print(json.load(sys.stdin)['target_directory'])")
BIN=$TARGET/release
mapfile -t BENCHES < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["bench"] and m.get("executable"):
        print(m["executable"])' "$OUT/build.json")

echo "== hot pure paths: criterion"
for bench in "${BENCHES[@]}"; do
  CRITERION_HOME="$TARGET/criterion" "$bench" --bench --warm-up-time 0.5 --measurement-time 1 2>&1
done > "$OUT/criterion.txt"
grep -c "time:" "$OUT/criterion.txt" | xargs printf "%s benchmarks, details in $OUT/criterion.txt\n"

psqlq() { psql -q -v ON_ERROR_STOP=1 "$@"; }

# measured NAME COMMAND...: runs the command and writes to $OUT/NAME.steal the share (%) of the
# machine's CPU time meanwhile that the hypervisor gave to other guests (/proc/stat's steal), since
# on a shared host it moves the rates of runs far more than the changes measured.
measured() {
  local name=$1 before after
  shift
  before=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  "$@"
  after=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  python3 -c "import sys; s0, t0, s1, t1 = map(int, sys.argv[1:]); print(100 * (s1 - s0) / max(t1 - t0, 1))" \
    $before $after > "$OUT/$name.steal"
}

echo "== baseline: pgbench, $CLIENTS clients, ${DURATION}s each"
psqlq -d postgres -c "DROP DATABASE IF EXISTS bench_baseline WITH (FORCE)" -c "CREATE DATABASE bench_baseline"
psqlq -d bench_baseline -v merchants=64 -v buyers="$CLIENTS" -v products=$PRODUCTS -f bench/pgbench/schema.sql
for run in purchase:0 hot:1; do
  name=${run%:*}
  # Unrecorded, as the load generator's warm-up: a fresh database's first seconds (cold caches,
  # no statistics yet) would otherwise count against the baseline and flatter the service.
  pgbench -n -M prepared -c "$CLIENTS" -j 2 -T 2 -D products=$PRODUCTS -D buyers="$CLIENTS" -D hot="${run#*:}" \
    -f bench/pgbench/purchase.sql bench_baseline > /dev/null
  measured "pgbench-$name" pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -D products=$PRODUCTS -D buyers="$CLIENTS" -D hot="${run#*:}" \
    -f bench/pgbench/purchase.sql -l --log-prefix="$OUT/pgbench-$name" bench_baseline > "$OUT/pgbench-$name.txt"
  grep -E "^tps" "$OUT/pgbench-$name.txt"
done

echo "== the service"
psqlq -d postgres -c "DROP DATABASE IF EXISTS bench_service WITH (FORCE)" -c "CREATE DATABASE bench_service"
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_service
"$BIN/server" migrate
PREFIX="bench-$(date +%s):"
ADMIN_EMAIL=admin@example.com
ADMIN_PASSWORD="bench password 1"
export ADMIN_EMAIL ADMIN_PASSWORD

# start PORT [ENV=VALUE...]: one server instance in the background.
start() {
  local port=$1
  shift
  # An instance that relays webhooks must be allowed to reach the load generator's receiver on
  # loopback: one that may not would fail the deliveries it claims and back them off.
  env JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 BIND_ADDRESS="127.0.0.1:$port" \
    WEBHOOK_ALLOW_HTTP=true WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true \
    REDIS_URL="$REDIS" REDIS_KEY_PREFIX="$PREFIX" RATE_LIMIT_ENABLED=false BCRYPT_COST=4 \
    DATABASE_POOL_MAX=16 WORKERS=2 RUST_LOG=warn "$@" "$BIN/server" serve >> "$OUT/server-$port.log" 2>&1 &
  echo $! > "$OUT/server-$port.pid"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null && return 0
    sleep 0.1
  done
  echo "the server on port $port did not start" >&2
  return 1
}

stop() { kill "$(cat "$OUT/server-$1.pid")" 2> /dev/null || true; }
trap 'for p in 18081 18082 18083; do stop $p; done' EXIT

# [SECONDS_OVERRIDE=N] run NAME [loadgen args...]
run() {
  local name=$1
  shift
  echo "-- $name"
  measured "$name" "$BIN/loadgen" --clients "$CLIENTS" --duration "${SECONDS_OVERRIDE:-$DURATION}" --json "$OUT/$name.json" "$@" > "$OUT/$name.txt"
  cat "$OUT/$name.txt"
}

# Only A relays webhooks: on one host, an idle instance relaying in real time takes the cores the
# busy one serves from, which separate hosts would not (bench/NOTES.md, issue 14).
start 18081
start 18082 WEBHOOK_RELAY=false
start 18083 CATALOG_CACHE=false WEBHOOK_RELAY=false
A=http://127.0.0.1:18081 B=http://127.0.0.1:18082

run purchase --url $A --scenario purchase
run flash-sale --url $A --scenario flash-sale
SECONDS_OVERRIDE=5 run flash-sale-sellout --url $A --scenario flash-sale --hot-stock 500
run transfer --url $A --scenario transfer
run transfer-to-one --url $A --scenario transfer-to-one
run browse --url $A --scenario browse
run browse-database --url http://127.0.0.1:18083 --scenario browse
run mixed --url $A --scenario mixed
run authorise-capture --url $A --scenario authorise-capture
run authorise-capture-order --url $A --scenario authorise-capture-order
run purchase-two-instances --url $A --url $B --scenario purchase
run flash-sale-two-instances --url $A --url $B --scenario flash-sale

# The purchase rate without and with webhook endpoints subscribed, alternately on one instance
# (loadgen deletes its endpoints after each run).
for round in 1 2 3; do
  run "purchase-no-endpoints-$round" --url $A --scenario purchase
  run "purchase-webhooks-$round" --url $A --scenario purchase --webhooks
done

echo "-- crash: instance B is killed with SIGKILL mid-run and started again"
"$BIN/loadgen" --clients "$CLIENTS" --duration "$DURATION" --url $A --url $B --scenario purchase \
  --allow-failed-requests --json "$OUT/crash.json" > "$OUT/crash.txt" 2>&1 &
LOADGEN=$!
sleep $((DURATION / 3 + 4))
kill -9 "$(cat "$OUT/server-18082.pid")"
sleep 2
start 18082 WEBHOOK_RELAY=false
wait $LOADGEN
cat "$OUT/crash.txt"

echo "== report"
python3 bench/report.py "$OUT" docs "$TARGET/criterion"
echo "make bench took $((SECONDS / 60)) min $((SECONDS % 60)) s"
