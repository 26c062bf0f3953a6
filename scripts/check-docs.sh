#!/usr/bin/env bash
# Fails if the crates that other Rust services embed, or the API client, have a documentation
# warning (a missing doc, since they `#![warn(missing_docs)]`, or a broken intra-doc link) or an
# example that does not run.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(payments-domain payments-application api-client)
packages=()
for crate in "${crates[@]}"; do
  packages+=(-p "$crate")
done

# `--all-features` documents `application::testing` too (the doubles embedding services use in tests).
RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --no-deps --all-features "${packages[@]}"
cargo test --doc "${packages[@]}"
