#!/usr/bin/env bash
# Validates what deploy/ holds, offline, with tools from package registries that this script
# installs when they are missing:
# - the Prometheus alert rules: `promtool check rules` and their unit tests (`promtool test rules`),
#   promtool taken from Debian's `prometheus` package (unpacked, not installed: no daemon starts);
# - the Grafana dashboard: its structure, and every query parsed by promtool;
# - rules and dashboard name only metrics that the code exports (`metrics::counter!` and co.);
# - the Kubernetes manifests: the kustomize base and overlay rendered by `kubectl kustomize` and
#   validated against Kubernetes' schemas by kubernetes-validate (PyPI, schemas bundled);
# - docker-compose.yml's shape, and HAProxy's configuration with `haproxy -c` (Debian's haproxy).
# Part of `make lint`.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${XDG_CACHE_HOME:-$HOME/.cache}/payments-tools"
mkdir -p "$tools"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

promtool=$(command -v promtool || true)
if [[ -z "$promtool" ]]; then
  promtool="$tools/promtool"
  if [[ ! -x "$promtool" ]]; then
    echo "deploy: unpacking promtool from Debian's prometheus package"
    (cd "$work" && apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download prometheus >/dev/null; })
    dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
    mv "$work/usr/bin/promtool" "$promtool"
  fi
fi
"$promtool" check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && "$promtool" test rules alerts.test.yml)

# The dashboard's queries, as recording rules promtool can parse; then every metric named by the
# rules or the dashboard must be one the code exports.
python3 scripts/check-deploy-metrics.py deploy/grafana/payments.json deploy/prometheus/alerts.yml "$work/dashboard-rules.yml"
"$promtool" check rules "$work/dashboard-rules.yml" >/dev/null
echo "deploy: every dashboard query parses"

if ! python3 -c "import kubernetes_validate" >/dev/null 2>&1; then
  echo "deploy: installing kubernetes-validate (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
validate() { python3 -m kubernetes_validate --strict --quiet -k "$1" "${@:2}"; }
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/kubernetes/base >"$work/base.yaml"
  kubectl kustomize deploy/kubernetes/overlays/example >"$work/overlay.yaml"
  for version in 1.30.0 1.37.0; do
    validate "$version" "$work/base.yaml" "$work/overlay.yaml"
  done
  echo "deploy: the kustomize base and overlay render and validate against Kubernetes 1.30 and 1.37"
else
  # Without kubectl the overlay cannot be rendered; the base's resources are whole documents.
  echo "deploy: no kubectl here; validating the base's files one by one, not the overlay"
  for version in 1.30.0 1.37.0; do
    validate "$version" $(ls deploy/kubernetes/base/*.yaml | grep -v kustomization.yaml)
  done
fi

python3 - <<'PY'
import yaml
compose = yaml.safe_load(open("docker-compose.yml"))
services = compose["services"]
assert services["migrate"]["command"] == ["migrate"], "migrations run once, in the migrate service"
server = services["server"]
assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
assert server["read_only"] is True and any(t.startswith("/tmp") for t in server["tmpfs"])
assert server["environment"]["RUN_MIGRATIONS"] == "false", "replicas must not migrate"
assert "replicas" in server["deploy"] and "ports" not in server, "replicas share no host port"
assert services["proxy"]["image"].startswith("haproxy:")
print("deploy: docker-compose.yml runs the migrations once and read-only replicas behind HAProxy")
PY
if ! command -v haproxy >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  echo "deploy: installing haproxy (Debian) to check its configuration"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
fi
if command -v haproxy >/dev/null 2>&1; then
  haproxy -c -q -f deploy/compose/haproxy.cfg
  echo "deploy: haproxy.cfg is valid"
else
  echo "deploy: haproxy is not installable here; haproxy.cfg not checked"
fi
