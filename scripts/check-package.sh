#!/usr/bin/env bash
# Fails if a crate meant for other Rust projects could not be published: `cargo package` builds
# each from the tarball it would upload (the workspace's crates among them stand in for the
# registry), so a file outside a crate (the migrations reach adapter-postgres through a symlink),
# a path dependency without a version, or a dev-dependency cycle shows here.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/publishable-crates.sh
# --allow-dirty: the check runs on a working tree as well as on a clean clone.
cargo package --quiet --allow-dirty "${packages[@]}"
echo "package: ${#crates[@]} crates package and build from their tarballs"
