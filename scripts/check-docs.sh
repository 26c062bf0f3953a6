#!/usr/bin/env bash
# Fails if the crates that other Rust services embed have a documentation warning (a missing doc,
# since they `#![warn(missing_docs)]`, or a broken intra-doc link) or an example that does not run.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(domain)
packages=()
for crate in "${crates[@]}"; do
  packages+=(-p "$crate")
done

RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --no-deps "${packages[@]}"
cargo test --doc "${packages[@]}"
