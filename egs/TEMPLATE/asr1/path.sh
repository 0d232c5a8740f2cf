# shellcheck shell=bash
# Sourced by every recipe script: activates the environment that tools/install.sh
# created (as Kaldi's and ESPnet's path.sh do, it installs nothing).
ESPNET_DISTILL_ROOT=${ESPNET_DISTILL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export ESPNET_DISTILL_ROOT
if [ ! -x "${ESPNET_DISTILL_ROOT}/tools/venv/bin/python" ]; then
  echo "path.sh: no environment in ${ESPNET_DISTILL_ROOT}/tools/venv; create it with: ${ESPNET_DISTILL_ROOT}/tools/install.sh" >&2
  return 1
fi
. "${ESPNET_DISTILL_ROOT}/tools/activate.sh"
export LC_ALL=C
export PYTHONUNBUFFERED=1
