"""Checks the Grafana dashboard's shape, writes its queries as recording rules for promtool to
parse, and fails when the dashboard or the alert rules name a metric the code does not export.

Usage: check-deploy-metrics.py DASHBOARD.json ALERTS.yml OUT-RULES.yml
"""

import json
import pathlib
import re
import sys

import yaml

FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan",
}


def exported_metrics():
    """The metric names the code records, with the series a histogram adds, and Prometheus' `up`."""
    names = {"up"}
    pattern = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
    for path in pathlib.Path("crates").rglob("*.rs"):
        for kind, name in pattern.findall(path.read_text()):
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        name, rest = match.group(0), text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in FUNCTIONS_AND_KEYWORDS:
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the unit of a number, as in 3e2
        names.add(name)
    return names


def grafana_to_promql(expr):
    """The query with Grafana's variables replaced by values promtool can parse."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$instance", ".*")


def dashboard_queries(path):
    dashboard = json.loads(pathlib.Path(path).read_text())
    for key in ("uid", "title", "panels", "schemaVersion", "templating"):
        assert key in dashboard, f"{path}: no {key}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables, f"{path}: variables {variables}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"{path}: panel ids repeat"
    queries = []
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, f"panel {panel['title']}: outside the grid"
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "gauge"}, panel["type"]
        assert panel["datasource"]["uid"] == "${datasource}", f"panel {panel['title']}: fixed data source"
        assert panel["targets"], f"panel {panel['title']}: no query"
        for target in panel["targets"]:
            queries.append((panel["title"], target["expr"]))
    return queries


def main(dashboard, alerts, out):
    exported = exported_metrics()
    queries = dashboard_queries(dashboard)
    rules = yaml.safe_load(pathlib.Path(alerts).read_text())
    named = [(f"dashboard panel {title!r}", expr) for title, expr in queries]
    named += [(f"alert {rule['alert']}", rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    unknown = []
    for where, expr in named:
        for name in sorted(metric_names(expr) - exported):
            unknown.append(f"{where} names {name}, which the code does not export")
    if unknown:
        sys.exit("\n".join(unknown))
    recording = [{"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)} for i, (_, expr) in enumerate(queries)]
    pathlib.Path(out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}))
    used = set().union(*(metric_names(expr) for _, expr in named))
    print(f"deploy: {len(queries)} dashboard queries and {len(named) - len(queries)} alerts name "
          f"{len(used)} metrics, all exported by the code")


if __name__ == "__main__":
    main(*sys.argv[1:])
