#!/usr/bin/env bash
# Schemathesis (PyPI) against the real server on PostgreSQL, as a customer, a merchant and an
# admin: every check of schemathesis, with the allowances of tests/schemathesis/schemathesis.toml.
# Zero server errors, zero schema violations, zero undocumented statuses, or it fails.
#
# Part of `make test`. Needs PostgreSQL on DATABASE_URL's server (default
# postgres://postgres@127.0.0.1:5432) and schemathesis (scripts/test-tools.sh installs it).
# SCHEMATHESIS_EXAMPLES sets the examples per operation (default 25). One worker: CPython 3.11's
# parser is not safe to call from several threads, which hypothesis does with more
# ("AST constructor recursion depth mismatch").
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
examples=${SCHEMATHESIS_EXAMPLES:-25}
target=${CARGO_TARGET_DIR:-target}
database="payments_schemathesis_$$"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:${port}"
log=$(mktemp)
server_pid=""

psql_admin() { psql "$admin_url" -v ON_ERROR_STOP=1 -q "$@"; }

cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  psql_admin -c "DROP DATABASE IF EXISTS ${database} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

cargo build --quiet -p server
psql_admin -c "CREATE DATABASE ${database}"
database_url="${admin_url%/*}/${database}"

DATABASE_URL="$database_url" RUN_MIGRATIONS=true BIND_ADDRESS="127.0.0.1:${port}" \
  JWT_SECRET=schemathesis-signing-key-of-at-least-32-bytes \
  ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD='operator secret 42' \
  SIMULATED_GATEWAY=true RATE_LIMIT_ENABLED=false BCRYPT_COST=4 LOG_FORMAT=json RUST_LOG=warn \
  "$target/debug/server" serve >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fs "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "$base/health/ready" >/dev/null || { echo "the server did not start:"; cat "$log"; exit 1; }

json() { curl -fs -X "$1" "$base$2" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "${4:-{\}}"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

token_of() { json POST /api/v1/auth/login "" "{\"email\": \"$1\", \"password\": \"$2\"}" | field "['access_token']"; }
admin=$(token_of admin@example.com 'operator secret 42')
for role in customer merchant; do
  json POST /api/v1/auth/register "" "{\"email\": \"$role@example.com\", \"password\": \"fuzzing pass 42\", \"role\": \"$role\"}" >/dev/null
done
customer=$(token_of customer@example.com 'fuzzing pass 42')
merchant=$(token_of merchant@example.com 'fuzzing pass 42')
customer_id=$(curl -fs "$base/api/v1/auth/me" -H "authorization: Bearer $customer" | field "['id']")
json POST "/api/v1/admin/wallets/$customer_id/adjustments" "$admin" '{"amount": "1000.00", "currency": "USD", "reason": "fuzzing funds"}' >/dev/null
json POST /api/v1/products "$merchant" '{"name": "Mug", "description": "", "price": "5.00", "currency": "USD", "stock": 1000}' >/dev/null

status=0
for role in customer merchant admin; do
  token=${!role}
  echo "schemathesis as $role"
  if ! python3 -m schemathesis.cli --no-color --config-file tests/schemathesis/schemathesis.toml run "$base/api/v1/openapi.json" --url "$base" \
    -H "Authorization: Bearer $token" --max-examples "$examples" --workers 1; then
    status=1
  fi
done
# A request the server failed is logged as "request failed" (schemathesis sees its 5xx too).
if grep -q '"message":"request failed"' "$log"; then
  echo "the server failed requests during the run:"
  grep '"message":"request failed"' "$log" | head -20
  status=1
fi
exit $status
