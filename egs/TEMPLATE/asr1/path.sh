# Sourced by every recipe script: installs the environment on first use
# (tools/install.sh, quick when it is up to date) and activates it.
ESPNET_DISTILL_ROOT=${ESPNET_DISTILL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export ESPNET_DISTILL_ROOT
"${ESPNET_DISTILL_ROOT}/tools/install.sh" >&2
. "${ESPNET_DISTILL_ROOT}/tools/activate.sh"
export LC_ALL=C
export PYTHONUNBUFFERED=1
