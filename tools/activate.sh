# shellcheck shell=bash
# Source this file to use the environment of tools/install.sh in a shell:
#   . tools/activate.sh
_espnet_distill_tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export VIRTUAL_ENV=${_espnet_distill_tools}/venv
# Debian's sctk installs sclite outside PATH.
export PATH=${VIRTUAL_ENV}/bin:/usr/lib/sctk/bin:${PATH}
unset _espnet_distill_tools
