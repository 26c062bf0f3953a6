#!/usr/bin/env bash
# Fails if a crate meant for other Rust projects could not be published: `cargo package` builds
# each from the tarball it would upload (the workspace's crates among them stand in for the
# registry), so a file outside a crate (the migrations reach adapter-postgres through a symlink),
# a path dependency without a version, or a dev-dependency cycle shows here.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/publishable-crates.sh
# The tarballs are built as crates of a registry, and cargo never rebuilds a registry crate whose
# name and version it has built before: a tarball whose code changed under the same version would
# be checked against the build of its old code. So the check builds in a target directory of its
# own, where the workspace's crates are forgotten before every run and only their dependencies stay.
target=$(cargo metadata --format-version 1 --no-deps | python3 -c "import json, sys; print(json.load(sys.stdin)['target_directory'])")
export CARGO_TARGET_DIR="$target/package-check"
for crate in "${crates[@]}"; do
  rm -rf "$CARGO_TARGET_DIR"/debug/.fingerprint/"$crate"-*
done
# --allow-dirty: the check runs on a working tree as well as on a clean clone.
cargo package --quiet --allow-dirty "${packages[@]}"
echo "package: ${#crates[@]} crates package and build from their tarballs"
