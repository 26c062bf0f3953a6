#!/usr/bin/env bash
# Installs the tools the test suite shells out to, if they are missing: the OpenAPI validator
# (openapi-spec-validator) used by the API documentation test, and schemathesis, which
# scripts/schemathesis.sh runs against the real server. Both from PyPI, versions pinned.
set -euo pipefail
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "installing openapi-spec-validator (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator
fi
if [[ "$(python3 -c 'import schemathesis; print(schemathesis.__version__)' 2>/dev/null)" != "4.32.5" ]]; then
  echo "installing schemathesis (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
