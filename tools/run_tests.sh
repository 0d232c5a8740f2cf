#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the test suite.
# Extra arguments go to pytest, e.g. tools/run_tests.sh -k fbank
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"${root}/tools/install.sh"
. "${root}/tools/activate.sh"
cd "${root}"
exec python -m pytest tests "$@"
