#!/usr/bin/env bash
# The scale-out runs of `make bench` (after bench/run.sh, whose release build they use): 1, 2 and
# 3 instances on one PostgreSQL, 3 instances through PgBouncer with their lagging reads on a
# streaming replica, and the catalog read from the database by 3 instances with and without the
# replica. Writes the measured part of
# docs/scaling.md. Every loadgen run ends with its books check.
#
# The replica is a second cluster made here with pg_basebackup from this machine's PostgreSQL,
# streaming from it on REPLICA_PORT; PgBouncer (Debian's) listens on PGBOUNCER_PORT and pools by
# session (docs/scaling.md says why). pg_basebackup needs a `replication` line in the server's
# pg_hba.conf: one allowing 127.0.0.1 is added (and the configuration reloaded) if none is there.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${BENCH_CLIENTS:-32}
DURATION=${BENCH_DURATION:-10}
REPLICA_PORT=${REPLICA_PORT:-15433}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-16432}
export PGHOST=127.0.0.1 PGUSER=postgres PGOPTIONS="-c client_min_messages=warning"
REDIS=${REDIS_URL:-redis://127.0.0.1:6379}
OUT=bench/out/scale
rm -rf "$OUT" && mkdir -p "$OUT"
git rev-parse --short HEAD > "$OUT/commit"

TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c "import json, sys; print(json.load(sys.stdin)['target_directory'])")
BIN=$TARGET/release
[[ -x $BIN/server && -x $BIN/loadgen ]] || { echo "run bench/run.sh first (it builds the release binaries)" >&2; exit 1; }
command -v pgbouncer > /dev/null || [[ -x /usr/sbin/pgbouncer ]] || apt-get install -y -qq pgbouncer > /dev/null
PATH=$PATH:/usr/sbin
PG_BIN=$(dirname "$(readlink -f "$(command -v pg_basebackup)")")
[[ -x $PG_BIN/pg_ctl ]] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# PostgreSQL and PgBouncer refuse to run as root: as root, they run as the server's own user.
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psqlq() { psql -q -v ON_ERROR_STOP=1 "$@"; }

WORK=$(mktemp -d)
chmod 755 "$WORK"
REPLICA_DIR=$WORK/replica
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  [[ -f $WORK/pgbouncer.pid ]] && kill "$(cat "$WORK/pgbouncer.pid")" 2> /dev/null || true
  [[ -d $REPLICA_DIR ]] && as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== scale-out: the database"
psqlq -d postgres -c "DROP DATABASE IF EXISTS bench_scale WITH (FORCE)" -c "CREATE DATABASE bench_scale"
PRIMARY=postgres://postgres@127.0.0.1:5432/bench_scale
DATABASE_URL=$PRIMARY "$BIN/server" migrate

echo "-- the replica: pg_basebackup, streaming on port $REPLICA_PORT"
HBA=$(psql -d postgres -Atc "SHOW hba_file")
if ! grep -Eq "^[[:space:]]*host[[:space:]]+replication" "$HBA"; then
  echo "host replication all 127.0.0.1/32 trust" >> "$HBA"
  psqlq -d postgres -c "SELECT pg_reload_conf()" > /dev/null
fi
mkdir -p "$REPLICA_DIR" && chown postgres: "$REPLICA_DIR" 2> /dev/null || true
chmod 700 "$REPLICA_DIR"
as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres -D "$REPLICA_DIR" -R -X stream -c fast
# Debian keeps the server's configuration outside its data directory: the copy gets its own.
as_postgres tee "$REPLICA_DIR/postgresql.conf" > /dev/null << EOF
port = $REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$REPLICA_DIR'
hot_standby = on
max_connections = 100
shared_buffers = 128MB
EOF
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | as_postgres tee "$REPLICA_DIR/pg_hba.conf" > /dev/null
as_postgres touch "$REPLICA_DIR/pg_ident.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_DIR/server.log" -w start > /dev/null
REPLICA=postgres://postgres@127.0.0.1:$REPLICA_PORT/bench_scale
psql "$REPLICA" -Atc "SELECT 'replica in recovery: ' || pg_is_in_recovery()"

echo "-- PgBouncer, pooling by session, on port $PGBOUNCER_PORT"
cat > "$WORK/pgbouncer.ini" << EOF
[databases]
* = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/users.txt
pool_mode = session
max_client_conn = 400
default_pool_size = 60
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
echo '"postgres" ""' > "$WORK/users.txt"
chmod 777 "$WORK"
as_postgres pgbouncer -d "$WORK/pgbouncer.ini"
BOUNCED=postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/bench_scale

PREFIX="bench-scale-$(date +%s):"
export ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD="bench password 1"

# start PORT [ENV=VALUE...]: one instance in the background. Only the first relays webhooks (as in
# bench/run.sh); none has endpoints here.
start() {
  local port=$1
  shift
  env JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 BIND_ADDRESS="127.0.0.1:$port" DATABASE_URL=$PRIMARY \
    REDIS_URL="$REDIS" REDIS_KEY_PREFIX="$PREFIX" RATE_LIMIT_ENABLED=false BCRYPT_COST=4 \
    DATABASE_POOL_MAX=16 WORKERS=2 RUST_LOG=warn "$@" "$BIN/server" serve >> "$OUT/server-$port.log" 2>&1 &
  PIDS+=($!)
  echo $! > "$OUT/server-$port.pid"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null && return 0
    sleep 0.1
  done
  echo "the server on port $port did not start" >&2
  return 1
}
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  PIDS=()
}
# three [ENV=VALUE...]: three instances on ports 18091-18093, the first one relaying.
three() {
  start 18091 "$@"
  start 18092 WEBHOOK_RELAY=false "$@"
  start 18093 WEBHOOK_RELAY=false "$@"
}
A=http://127.0.0.1:18091 B=http://127.0.0.1:18092 C=http://127.0.0.1:18093
run() {
  local name=$1
  shift
  echo "-- $name"
  "$BIN/loadgen" --clients "$CLIENTS" --duration "$DURATION" --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

echo "== purchases by 1, 2 and 3 instances on one PostgreSQL"
three
run purchase-1 --url $A --scenario purchase
run purchase-2 --url $A --url $B --scenario purchase
run purchase-3 --url $A --url $B --url $C --scenario purchase
stop_all

echo "== 3 instances through PgBouncer, the reads that may lag on the replica"
three DATABASE_URL=$BOUNCED DATABASE_REPLICA_URL=$REPLICA
run purchase-3-pgbouncer --url $A --url $B --url $C --scenario purchase
run mixed-3-pgbouncer-replica --url $A --url $B --url $C --scenario mixed
stop_all

echo "== the catalog from the database (no cache), 3 instances, without and with the replica"
three CATALOG_CACHE=false
run browse-3-primary --url $A --url $B --url $C --scenario browse
stop_all
three CATALOG_CACHE=false DATABASE_REPLICA_URL=$REPLICA
run browse-3-replica --url $A --url $B --url $C --scenario browse
curl -fs "$A/health/ready" | tee "$OUT/ready-with-replica.json"
echo
psql "$REPLICA" -Atc "SELECT 'replica: ' || sum(xact_commit) || ' transactions committed (read-only) in bench_scale' FROM pg_stat_database WHERE datname = 'bench_scale'"
stop_all

echo "== report"
python3 bench/scale_report.py "$OUT" docs/scaling.md
