#!/usr/bin/env bash
# Install everything espnet-distill needs; safe to rerun, and quick when up to date.
#   - Debian packages: espeak-ng, flite, sox (mini corpus), fortunes (its text), sctk (sclite), shellcheck (lint)
#   - tools/venv: the pinned Python packages of tools/requirements.txt and this package (editable)
# Anything that cannot be installed is listed, all at once, and the script exits 1.
set -euo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "${tools_dir}")
venv=${tools_dir}/venv
python=${PYTHON:-python3}
install_log=${tools_dir}/install.log
debian_packages=(espeak-ng flite sox fortunes sctk shellcheck)
# A program or file each package provides, to tell quickly whether it is there.
debian_probes=(/usr/bin/espeak-ng /usr/bin/flite /usr/bin/sox /usr/share/games/fortunes/wisdom /usr/lib/sctk/bin/sclite /usr/bin/shellcheck)

missing=()
say() { echo "tools/install.sh: $*" >&2; }

# One install at a time: recipes started side by side (two seeds, ssl1 and asr1) wait here for the
# first to finish instead of building the same venv at once.
if command -v flock >/dev/null; then
  exec 9>"${tools_dir}/.install.lock"
  flock 9
fi

# --- Debian packages -------------------------------------------------------
absent=()
for i in "${!debian_packages[@]}"; do
  [ -e "${debian_probes[$i]}" ] || absent+=("${debian_packages[$i]}")
done
if [ ${#absent[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${absent[*]}"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${absent[@]}"; } >>"${install_log}" 2>&1; then
      say "apt-get failed; see ${install_log}"
    fi
  fi
  for i in "${!debian_packages[@]}"; do
    [ -e "${debian_probes[$i]}" ] || missing+=("Debian package ${debian_packages[$i]} (as root: apt-get install ${debian_packages[$i]})")
  done
fi

# --- Python environment ----------------------------------------------------
stamp=${venv}/.espnet_distill_installed
want_stamp=$(cat "${tools_dir}/requirements.txt" "${root}/setup.py" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want_stamp}" ] && [ -x "${venv}/bin/python" ]; then
  : # up to date
elif ! command -v "${python}" >/dev/null; then
  missing+=("Python 3.11 or newer (${python} not found; set PYTHON=/path/to/python3)")
elif ! "${python}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  missing+=("Python 3.11 or newer (${python} is $("${python}" --version 2>&1))")
else
  say "creating ${venv} with the pinned packages (a few minutes; log: ${install_log})"
  start=${SECONDS}
  if [ ! -x "${venv}/bin/python" ] && ! "${python}" -m venv "${venv}" >>"${install_log}" 2>&1; then
    missing+=("the Python venv module (Debian: apt-get install python3-venv)")
  elif ! "${venv}/bin/python" -m pip install -q -r "${tools_dir}/requirements.txt" >>"${install_log}" 2>&1; then
    missing+=("Python packages of tools/requirements.txt (pip failed; see ${install_log})")
  elif ! "${venv}/bin/python" -m pip install -q --no-deps -e "${root}" >>"${install_log}" 2>&1; then
    missing+=("espnet_distill itself (pip install -e failed; see ${install_log})")
  else
    echo "${want_stamp}" >"${stamp}"
    say "Python environment ready in $((SECONDS - start)) s"
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "cannot install everything; missing:"
  for item in "${missing[@]}"; do echo "  - ${item}" >&2; done
  exit 1
fi
