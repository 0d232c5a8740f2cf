#!/usr/bin/env bash
# Lint the repository: ruff (format check and the lint rules of ruff.toml) on the Python code, and
# ShellCheck (its settings: .shellcheckrc) on every shell script.  Installs what is missing first.
#   tools/lint.sh          check (exit 1 naming the files at fault)
#   tools/lint.sh --fix    apply ruff's formatting and safe fixes, then check
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"${root}/tools/install.sh"
. "${root}/tools/activate.sh"
cd "${root}"
if [ "${1:-}" = "--fix" ]; then
  ruff format .
  ruff check --fix .
fi
status=0
ruff format --check . || status=1
ruff check . || status=1
# Every shell script of the repository (a recipe's links to egs/TEMPLATE are checked there).
mapfile -t scripts < <(find . -path ./tools/venv -prune -o -path './egs/*/*/exp' -prune -o -path './egs/*/*/data' -prune \
  -o -path './egs/*/*/downloads' -prune -o -type f \( -name '*.sh' -o -path ./.ci/run \) -print | sort)
shellcheck -x "${scripts[@]}" || status=1
[ "${status}" -eq 0 ] && echo "tools/lint.sh: ruff and shellcheck passed (${#scripts[@]} shell scripts)"
exit "${status}"
