#!/usr/bin/env bash
# Installs the tools the test suite shells out to, if they are missing: the OpenAPI validator
# (openapi-spec-validator) used by the API documentation test, and schemathesis, which
# scripts/schemathesis.sh runs against the real server. Both from PyPI, versions pinned.
# Debian's packages below (pgbouncer, chromium) are installed with apt-get.
set -euo pipefail
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "installing openapi-spec-validator (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator
fi
if [[ "$(python3 -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null)" != "4.32.5" ]]; then
  echo "installing schemathesis (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
# PgBouncer (Debian's), which the PostgreSQL adapter's pooler test runs in front of the server.
if ! command -v pgbouncer >/dev/null 2>&1 && [[ ! -x /usr/sbin/pgbouncer ]]; then
  echo "installing pgbouncer (apt)"
  apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null
fi
# The web UI's browser journey (tests/api/web_browser.rs): Debian's Chromium and its WebDriver,
# Selenium to drive it from Python, and axe-core (from npm, pinned) for the accessibility check.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (apt)"
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if [[ "$(python3 -c 'import selenium; print(selenium.__version__)' 2>/dev/null)" != "4.51.0" ]]; then
  echo "installing selenium (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check selenium==4.51.0
fi
AXE_DIR="$(dirname "$0")/../tests/browser/.vendor/axe-core"
if [[ ! -f "$AXE_DIR/axe.min.js" ]] || ! grep -q '"version": "4.14.1"' "$AXE_DIR/package.json" 2>/dev/null; then
  echo "fetching axe-core (npm)"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent axe-core@4.14.1 >/dev/null && tar xzf axe-core-4.14.1.tgz)
  mkdir -p "$AXE_DIR"
  cp "$work/package/axe.min.js" "$work/package/package.json" "$work/package/LICENSE" "$AXE_DIR/"
  rm -rf "$work"
fi
