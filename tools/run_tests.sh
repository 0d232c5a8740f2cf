#!/usr/bin/env bash
# Install what is missing (tools/install.sh), then run the tests.
#   tools/run_tests.sh          the fast tier, about a minute on 2 cores: the unit tests and short checks
#                               that train tiny models for a few steps; not the tests marked slow (recipe
#                               runs, the documented commands, longer trainings and exports)
#   tools/run_tests.sh --all    every test (about 40 minutes on 2 cores; .ci/run runs this)
# Other arguments go to pytest, e.g. tools/run_tests.sh -k fbank
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"${root}/tools/install.sh"
. "${root}/tools/activate.sh"
cd "${root}"
if [ "${1:-}" = "--all" ]; then
  shift
  exec python -m pytest tests "$@"
fi
exec python -m pytest tests -m "not slow" "$@"
