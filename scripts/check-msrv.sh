#!/usr/bin/env bash
# Fails when the declared minimum Rust version is not the real one: when a locked dependency that
# builds for Linux (x86_64 or aarch64, where the service runs) declares a `rust-version` above the
# workspace's, or when a workspace member does not inherit the workspace's `rust-version`.
# `cargo metadata --filter-platform` leaves out what only other platforms or cfgs build (the
# `windows-*` crates; `generator`, which only `--cfg loom` builds), so they do not count; they are
# listed for information. Clippy's `incompatible_msrv` lint (in `make lint`) then catches our own
# use of standard-library APIs newer than the declared version.
set -euo pipefail
cd "$(dirname "$0")/.."

metadata() { cargo metadata --format-version 1 --locked "$@"; }
all=$(mktemp) x86=$(mktemp) arm=$(mktemp)
trap 'rm -f "$all" "$x86" "$arm"' EXIT
metadata >"$all"
metadata --filter-platform x86_64-unknown-linux-gnu >"$x86"
metadata --filter-platform aarch64-unknown-linux-gnu >"$arm"

python3 - "$all" "$x86" "$arm" <<'PY'
import json
import sys
import tomllib


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def show(v):
    return ".".join(str(p) for p in v)


with open("Cargo.toml", "rb") as f:
    declared_text = tomllib.load(f)["workspace"]["package"]["rust-version"]
declared = version(declared_text)

everything, *linux = (json.load(open(path)) for path in sys.argv[1:])
members = set(everything["workspace_members"])
built = set()
for metadata in linux:
    built |= {node["id"] for node in metadata["resolve"]["nodes"]}

failures = []
for package in everything["packages"]:
    if package["id"] in members and package.get("rust_version") != declared_text:
        failures.append(f"workspace member {package['name']} declares rust-version {package.get('rust_version')}, "
                        f"not the workspace's {declared_text} (add `rust-version.workspace = true`)")

needed = max(
    ((version(p["rust_version"]), p["name"], p["version"]) for p in everything["packages"]
     if p["id"] in built and p["id"] not in members and p.get("rust_version")),
    default=((0, 0, 0), "", ""),
)
too_new = sorted(
    (version(p["rust_version"]), p["name"], p["version"]) for p in everything["packages"]
    if p["id"] in built and p["id"] not in members and p.get("rust_version") and version(p["rust_version"]) > declared
)
for v, name, ver in too_new:
    failures.append(f"{name} {ver} needs Rust {show(v)}, above the workspace's rust-version {declared_text}")
elsewhere = sorted(
    {(version(p["rust_version"]), p["name"]) for p in everything["packages"]
     if p["id"] not in built and p.get("rust_version") and version(p["rust_version"]) > declared}
)
if elsewhere:
    names = ", ".join(f"{name} ({show(v)})" for v, name in elsewhere)
    print(f"msrv: not built on Linux, so not counted: {names}")
if failures:
    print("\n".join(failures), file=sys.stderr)
    print(f"msrv: the locked dependencies need Rust {show(needed[0])} ({needed[1]} {needed[2]}); "
          "raise rust-version in Cargo.toml and the Dockerfile's rust image with it", file=sys.stderr)
    sys.exit(1)
print(f"msrv: rust-version {declared_text} covers every locked dependency built on Linux "
      f"(the highest: {needed[1]} {needed[2]}, {show(needed[0])})")
PY
