#!/usr/bin/env bash
# Installs the tools the test suite shells out to, if they are missing: the OpenAPI validator
# (openapi-spec-validator, from PyPI) used by the API documentation test.
set -euo pipefail
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "installing openapi-spec-validator (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator
fi
