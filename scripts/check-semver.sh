#!/usr/bin/env bash
# Fails if the public API of a crate meant for other Rust projects changed in a way its version
# does not allow, as cargo-semver-checks finds by comparing rustdoc's description of the API at two
# revisions. The baseline is the commit that last changed the workspace's version: until the
# version moves, every crate must stay compatible with what it was when that version was declared
# (below 1.0, a breaking change needs the minor version raised). A commit that changed the list of
# publishable crates after it (a crate added, or all renamed) is the baseline instead, since the
# older commit has no crate of that name to compare with. No version is published yet, so such a
# commit is the only baseline there is; once one is, `--baseline-version` should replace it.
#
# The tool is installed once, at the version below, under $PAYMENTS_TOOLS (outside the clone, so
# that CI keeps it between runs); the check needs the repository's history, not a shallow clone.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${PAYMENTS_TOOLS:-$HOME/.cache/payments-tools}
VERSION=0.51.0
if ! "$TOOLS/bin/cargo-semver-checks" semver-checks --version 2> /dev/null | grep -qF "$VERSION"; then
  echo "installing cargo-semver-checks $VERSION under $TOOLS (once; a few minutes)"
  cargo install --quiet --locked --root "$TOOLS" cargo-semver-checks --version "$VERSION"
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  git fetch --quiet --unshallow
fi
baseline=$(git log -1 --format=%H -G '^version = ' -- Cargo.toml)
if [ -z "$baseline" ]; then
  echo "semver: no commit sets the workspace's version in Cargo.toml" >&2
  exit 1
fi
listed=$(git log -1 --format=%H -- scripts/publishable-crates.sh)
if [ -n "$listed" ] && git merge-base --is-ancestor "$baseline" "$listed"; then
  baseline=$listed
fi

source scripts/publishable-crates.sh
PATH="$TOOLS/bin:$PATH" cargo semver-checks check-release --baseline-rev "$baseline" "${packages[@]}"
echo "semver: ${#crates[@]} crates compatible with their API at $(git log -1 --format='%h (%s)' "$baseline" | cut -c1-80)"
