#!/usr/bin/env python3
"""Writes the measured part of docs/scaling.md from the results of bench/scale.sh: the section
between the `measured:begin` and `measured:end` markers is replaced, the rest is left as written."""
import json
import os
import platform
import re
import sys
from datetime import datetime, timezone

out, doc = sys.argv[1], sys.argv[2]


def load(name):
    with open(os.path.join(out, f"{name}.json")) as f:
        return json.load(f)


def non_2xx(result):
    bad = {s: n for s, n in result["statuses"].items() if not (s.isdigit() and 200 <= int(s) < 300)}
    return ", ".join(f"{s}: {n}" for s, n in sorted(bad.items())) or "none"


runs = [
    ("purchase-1", "purchase, 1 instance"),
    ("purchase-2", "purchase, 2 instances"),
    ("purchase-3", "purchase, 3 instances"),
    ("purchase-3-pgbouncer", "purchase, 3 instances through PgBouncer (session pooling), replica"),
    ("mixed-3-pgbouncer-replica", "mixed, 3 instances through PgBouncer, lagging reads on the replica"),
    ("browse-3-primary", "catalog from the database, 3 instances, primary only"),
    ("browse-3-replica", "catalog from the database, 3 instances, lagging reads on the replica"),
]
results = {name: load(name) for name, _ in runs if os.path.exists(os.path.join(out, f"{name}.json"))}
commit = open(os.path.join(out, "commit")).read().strip()
first = next(iter(results.values()))
lines = [
    "<!-- measured:begin (written by bench/scale_report.py; edit the script, not this part) -->",
    "",
    f"Measured by `make bench` (bench/scale.sh) on {datetime.now(timezone.utc):%Y-%m-%d}, commit `{commit}`, "
    f"{os.cpu_count()} cores ({platform.machine()}), {first['clients']} clients for {first['seconds']:.0f} s per run; "
    "every instance, PostgreSQL, the replica, PgBouncer, Redis and the load generator on this one host. "
    "Every run ends with the load generator's books check (ledger verification, stock against orders, money "
    "conserved), which passed.",
    "",
    "| run | requests/s | p50 ms | p99 ms | non-2xx |",
    "|---|---|---|---|---|",
]
for name, label in runs:
    if name in results:
        r = results[name]
        lines.append(f"| {label} | {r['requests_per_second']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {non_2xx(r)} |")


def rate(name):
    return results[name]["requests_per_second"] if name in results else float("nan")


lines += [
    "",
    f"Purchases: 2 instances do {rate('purchase-2') / rate('purchase-1'):.0%} and 3 instances "
    f"{rate('purchase-3') / rate('purchase-1'):.0%} of one instance's rate; through PgBouncer, 3 instances do "
    f"{rate('purchase-3-pgbouncer') / rate('purchase-3'):.0%} of their direct rate. The catalog read from the "
    f"database does {rate('browse-3-replica') / rate('browse-3-primary'):.0%} of the primary-only rate when the "
    "replica serves it.",
    "",
    "<!-- measured:end -->",
]
text = open(doc).read()
section = "\n".join(lines)
updated, count = re.subn(r"<!-- measured:begin.*?<!-- measured:end -->", lambda _: section, text, flags=re.S)
if count != 1:
    sys.exit(f"{doc} has no measured:begin/measured:end section")
open(doc, "w").write(updated)
print(section)
