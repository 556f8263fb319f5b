#!/usr/bin/env bash
# Install everything (with Chromium for the browser tests) and run the whole test suite,
# including the e2e tests on the real local model and the browser tests.
#   ./test.sh                 # all tests
#   ./test.sh -m "not e2e"    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"

bash scripts/install.sh --browser
exec "$PY" -m pytest "$@"
