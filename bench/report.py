#!/usr/bin/env python3
"""Writes docs/benchmarks.md (and docs/benchmarks.png) from the results of bench/run.sh."""
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import datetime, timezone

out, docs = sys.argv[1], sys.argv[2]
criterion_dir = sys.argv[3] if len(sys.argv) > 3 else None


def load(name):
    with open(os.path.join(out, f"{name}.json")) as f:
        return json.load(f)


def pgbench(script):
    text = open(os.path.join(out, f"pgbench-{script}.txt")).read()
    tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
    latencies = []
    for path in glob.glob(os.path.join(out, f"pgbench-{script}.*")):
        if path.endswith(".txt"):
            continue
        with open(path) as f:
            # Failed transactions (a deadlock between two wallets) log "failed" instead of a time.
            latencies += [int(fields[2]) / 1000.0 for fields in map(str.split, f) if len(fields) > 2 and fields[2].isdigit()]
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    failed = re.search(r"number of failed transactions: ([0-9]+)", text)
    statuses = {"failed": int(failed.group(1))} if failed and int(failed.group(1)) > 0 else {}
    return {"requests_per_second": tps, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": latencies[-1] if latencies else float("nan"), "statuses": statuses}


def non_2xx(result):
    bad = {s: n for s, n in result["statuses"].items() if not (s.isdigit() and 200 <= int(s) < 300)}
    return ", ".join(f"{s}: {n}" for s, n in sorted(bad.items())) or "none"


def steal(name):
    """The share of CPU time the hypervisor gave to other guests during a run, as bench/run.sh measured it."""
    path = os.path.join(out, f"{name}.steal")
    return f"{float(open(path).read()):.0f}" if os.path.exists(path) else "-"


def row(label, result, name):
    return (f"| {label} | {result['requests_per_second']:.0f} | {result['p50_ms']:.1f} | {result['p90_ms']:.1f} | "
            f"{result['p99_ms']:.1f} | {result['max_ms']:.1f} | {non_2xx(result)} | {steal(name)} |")


base_purchase, base_hot = pgbench("purchase"), pgbench("hot")
runs = [(name, load(name)) for name in
        ["purchase", "flash-sale", "flash-sale-sellout", "transfer", "transfer-to-one", "browse", "browse-database", "mixed",
         "authorise-capture", "authorise-capture-order", "purchase-two-instances", "flash-sale-two-instances", "crash"]
        if os.path.exists(os.path.join(out, f"{name}.json"))]
r = dict(runs)
clients = r["purchase"]["clients"]
seconds = r["purchase"]["seconds"]

purchase_share = r["purchase"]["requests_per_second"] / base_purchase["requests_per_second"]
hot_share = r["flash-sale"]["requests_per_second"] / base_hot["requests_per_second"]
checks = [
    ("`purchase` at least 100% of the pgbench purchase baseline", f"{purchase_share:.0%}", purchase_share >= 1.0),
    ("`purchase` p99 under 50 ms", f"{r['purchase']['p99_ms']:.1f} ms", r["purchase"]["p99_ms"] < 50),
    ("`purchase` without errors", non_2xx(r["purchase"]), non_2xx(r["purchase"]) == "none"),
    ("`flash-sale` at least 2x the pgbench hot-row baseline", f"{hot_share:.2f}x", hot_share >= 2.0),
    ("`flash-sale` p99 under 100 ms", f"{r['flash-sale']['p99_ms']:.1f} ms", r["flash-sale"]["p99_ms"] < 100),
    ("`flash-sale` without 5xx, sold out cleanly", non_2xx(r["flash-sale-sellout"]),
     all(int(s) < 500 and int(s) != 0 for s in r["flash-sale-sellout"]["statuses"])),
    ("`browse` from the cache at least 10,000 requests per second", f"{r['browse']['requests_per_second']:.0f}/s",
     r["browse"]["requests_per_second"] >= 10000),
]

commit_file = os.path.join(out, "commit")
commit = (open(commit_file).read().strip() if os.path.exists(commit_file)
          else subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip())
pg_version = subprocess.run(["psql", "-tAc", "SHOW server_version", "-d", "postgres"], capture_output=True, text=True).stdout.strip()
cpus = os.cpu_count()

lines = [
    "# Benchmarks",
    "",
    f"Measured by `make bench` (bench/run.sh) on {datetime.now(timezone.utc):%Y-%m-%d}, commit `{commit}`: "
    f"{cpus} cores, PostgreSQL {pg_version}, Redis, the server (release build without the `stripe` feature, 2 HTTP workers, a pool of 16 "
    f"connections), pgbench and the load generator all on the same host; {clients} clients, {seconds:.0f} s per run "
    "after a 2 s warm-up. Every service run ends with the load generator's books check (ledger verification, "
    "stock against paid orders, merchants' takings, money conserved); all passed, or `make bench` would have failed.",
    "",
    "## Targets",
    "",
    "| target | measured | met |",
    "|---|---|---|",
]
lines += [f"| {what} | {value} | {'yes' if ok else '**no**'} |" for what, value, ok in checks]
lines += [
    "",
    "## Results",
    "",
    "| run | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx (0 = no answer) | CPU steal % |",
    "|---|---|---|---|---|---|---|---|",
    row("pgbench baseline: purchase (raw SQL)", base_purchase, "pgbench-purchase"),
    row("pgbench baseline: hot row (raw SQL)", base_hot, "pgbench-hot"),
]
lines += [row(f"service: {name}", result, name) for name, result in runs]
lines += [
    "",
    "![requests per second](benchmarks.png)",
    "",
    "## What each run does",
    "",
    "- **pgbench baseline** (`bench/pgbench/`): the least SQL a correct purchase needs on an equivalent schema "
    "(lock and decrement the stock row, move the money between two wallets with two postings carrying the balance "
    "after, insert the order and its item), in one transaction; `purchase.sql` picks a random buyer and a random product "
    "of 256, or with `-D hot=1` always the same product of the same merchant. One purchase per transaction, never "
    "batched; run with `-M prepared` (extended protocol, statements prepared once per connection), as the service's "
    "statements are prepared too.",
    "- **purchase**: wallet purchases of one unit of a random product of 256 from 64 merchants; each client is its "
    "own buyer.",
    "- **flash-sale**: every client buys the same product of one merchant (one hot stock row, one hot merchant "
    "wallet). **flash-sale-sellout** does the same with 500 units, so most answers are the clean 409 `out_of_stock`, "
    "and the books check proves nothing was oversold.",
    "- **transfer**: 0.01 transfers between random funded buyers. **transfer-to-one**: every client sends 0.01 to "
    "the same buyer (one hot wallet; transfers to one recipient are grouped into one commit).",
    "- **browse**: product list (20 per page) and detail reads, served from the Redis catalog cache; "
    "**browse-database** is the same against an instance started with `CATALOG_CACHE=false`.",
    "- **mixed**: 55% browsing, 20% purchases, 10% transfers, 10% history reads, 5% logins (bcrypt cost 4 for the "
    "run; production uses 12, where a login costs about 250 ms of CPU).",
    "- **authorise-capture**: a buyer authorises a random merchant to take 1.00 of its wallet (`POST /api/v1/holds`), "
    "and the merchant captures 0.60 with `final`, releasing the rest: each request counted above is that pair, two "
    "HTTP requests. The books check adds the captures to the merchants' takings and finds nothing left held.",
    "- **authorise-capture-order**: a buyer orders two units of a random product with `\"capture\": \"manual\"` "
    "(the order `authorised`, the stock reserved, the merchant's part held), and the merchant captures one "
    "(`POST /api/v1/orders/{id}/capture`), releasing the other unit and its money: each request counted is that pair. "
    "The books check counts the captured units as sold and finds nothing reserved or held.",
    "- **two instances**: the clients are spread over two server instances sharing the database and Redis.",
    "- **crash**: two instances; one is killed with SIGKILL about a third into the run and started again two seconds "
    "later. Requests it had in flight fail (status 0 above); the books check afterwards finds every order either "
    "fully paid or absent, and the ledger exact.",
    "",
    "## Exact commands",
    "",
    "```sh",
    "make bench                      # BENCH_CLIENTS=32 BENCH_DURATION=10 by default",
    "cargo build --release -p server -p loadgen --no-default-features   # the server without Stripe",
    f"pgbench -n -M prepared -c {clients} -j 2 -T <seconds> -D products=256 -D buyers={clients} -D hot=0 -f bench/pgbench/purchase.sql bench_baseline   # hot=1: the hot row",
    f"loadgen --url http://127.0.0.1:18081 --scenario purchase --clients {clients} --duration <seconds>",
    "```",
    "",
    "The server runs with `RATE_LIMIT_ENABLED=false` (the clients would otherwise be throttled as they should be) "
    "and `BCRYPT_COST=4` (so that seeding and logins measure the service, not bcrypt).",
]


def criterion_results(root):
    """(id, mean ns, 95% interval) of every criterion benchmark under root."""
    results = []
    for path in glob.glob(os.path.join(root, "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            full_id = json.load(f)["full_id"]
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            mean = json.load(f)["mean"]
        results.append((full_id, mean["point_estimate"], mean["confidence_interval"]))
    return sorted(results)


def duration(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


webhook_names = [f"purchase-{kind}-{n}" for n in (1, 2, 3) for kind in ("no-endpoints", "webhooks")]
webhook_runs = [(name, load(name)) for name in webhook_names if os.path.exists(os.path.join(out, f"{name}.json"))]
if len(webhook_runs) == len(webhook_names):
    def mean_rate(kind):
        rates = [result["requests_per_second"] for name, result in webhook_runs if kind in name]
        return sum(rates) / len(rates)
    relay_share = mean_rate("webhooks") / mean_rate("no-endpoints")
    lines += [
        "",
        "## Outbound webhooks",
        "",
        "The `purchase` scenario on one instance started with `WEBHOOK_ALLOW_HTTP=true WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true`, "
        "alternately without endpoints and with `loadgen --webhooks`: a receiver in the load generator, the platform's "
        "endpoint subscribed to every event and each of the 64 merchants' to `order.paid`. "
        "Every delivery is verified with its endpoint's secret; the run fails if one does not verify or if a paid order's "
        "`order.paid` did not reach its merchant. Lag is from the event's time to its arrival at the receiver; "
        "drain is how long after the load stopped the last delivery arrived. CPU steal is the share of the run's CPU "
        "time the hypervisor gave to other guests: rates of runs with different steal do not compare.",
        "",
        f"Purchase rate with endpoints: **{relay_share:.0%}** of the rate without "
        f"(target: at least 90%, {'met' if relay_share >= 0.9 else '**not met**'}).",
        "",
        "| run | requests/s | p99 ms | deliveries | duplicates | lag p50 ms | lag p99 ms | lag max ms | drain s | CPU steal % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in webhook_runs:
        hooks = result.get("webhooks") or {}
        lines.append(
            f"| {name} | {result['requests_per_second']:.0f} | {result['p99_ms']:.1f} | {hooks.get('deliveries', '-')} | "
            f"{hooks.get('duplicates', '-')} | {hooks.get('lag_p50_ms', '-')} | {hooks.get('lag_p99_ms', '-')} | "
            f"{hooks.get('lag_max_ms', '-')} | {hooks.get('drain_seconds', 0):.1f} | {steal(name)} |")

micro = criterion_results(criterion_dir) if criterion_dir and os.path.isdir(criterion_dir) else []
if micro:
    lines += [
        "",
        "## Hot pure paths (criterion)",
        "",
        "One core, `cargo bench -p payments-domain -p payments-adapter-auth -p payments-stripe-signature` (benches in each crate's `benches/`).",
        "",
        "| benchmark | mean | 95% interval |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {duration(ns)} | {duration(ci['lower_bound'])} to {duration(ci['upper_bound'])} |"
              for name, ns, ci in micro]

notes = os.path.join("bench", "NOTES.md")
if os.path.exists(notes):
    lines += ["", open(notes).read().strip()]
os.makedirs(docs, exist_ok=True)
with open(os.path.join(docs, "benchmarks.md"), "w") as f:
    f.write("\n".join(lines) + "\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = ["pgbench purchase", "pgbench hot row"] + [name for name, _ in runs]
    values = [base_purchase["requests_per_second"], base_hot["requests_per_second"]] + [res["requests_per_second"] for _, res in runs]
    colors = ["#888888", "#888888"] + ["#2a6fb0"] * len(runs)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    ax.set_xscale("log")
    ax.set_xlabel("requests per second (log scale)")
    ax.set_title(f"{clients} clients, {cpus} cores, everything on one host")
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(docs, "benchmarks.png"), dpi=110)
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
print("\n".join(lines[:20]))
