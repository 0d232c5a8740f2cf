#!/usr/bin/env bash
# Kaldi data dirs of LibriSpeech (train_960, train_clean_100, dev_clean, dev_other,
# test_clean, test_other) and of Libri-Light's limited-resource sets (train_10h,
# train_1h, train_10min), the FLAC audio left in place.  Corpus roots: db.sh.
# A rerun with the same corpora does nothing.
set -euo pipefail
. utils/stage_steps.sh

data_dirs="train_960 train_clean_100 dev_clean dev_other test_clean test_other train_10h train_1h"
help_message="Usage: $0 [--data_dirs \"<names>\"]
e.g.: $0 --data_dirs \"train_clean_100 dev_clean test_clean\""
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
. ./path.sh
. ./db.sh

librispeech=$(cd "${LIBRISPEECH}" 2>/dev/null && pwd) || librispeech=""
librilight=$(cd "${LIBRILIGHT}" 2>/dev/null && pwd) || librilight=""
need_ls=false
need_ll=false
for d in ${data_dirs}; do
  case "${d}" in
    train_10h | train_1h | train_10min) need_ll=true ;;
    *) need_ls=true ;;
  esac
done
if ${need_ls} && { [ -z "${librispeech}" ] || [ ! -d "${librispeech}/LibriSpeech" ]; }; then
  log "Error: no LibriSpeech under LIBRISPEECH=${LIBRISPEECH} (db.sh). Download the subsets from" \
    "https://www.openslr.org/12 (train-clean-100, train-clean-360, train-other-500, dev-clean," \
    "dev-other, test-clean, test-other), extract them there (they unpack into LibriSpeech/)," \
    "or set LIBRISPEECH to the directory that holds LibriSpeech/."
  exit 1
fi
if ${need_ll} && { [ -z "${librilight}" ] || [ ! -d "${librilight}/librispeech_finetuning" ]; }; then
  log "Error: no librispeech_finetuning under LIBRILIGHT=${LIBRILIGHT} (db.sh). Download Libri-Light's" \
    "limited-resource sets (librispeech_finetuning.tgz, https://github.com/facebookresearch/libri-light)," \
    "extract it there, or set LIBRILIGHT to the directory that holds librispeech_finetuning/."
  exit 1
fi

# The data dirs are redone when the corpus roots or the list of data dirs changed.
stamp=(--arg "librispeech=${librispeech}" --arg "librilight=${librilight}" --arg "data_dirs=${data_dirs}")
for d in ${data_dirs}; do stamp+=(--output "data/${d}/wav.scp"); done
adopt_done_marker data/.librispeech.done "${librispeech} ${librilight} ${data_dirs}" data "${stamp[@]}"
needs_run "LibriSpeech data dirs" data "${stamp[@]}" || exit 0
corpora=()
${need_ls} && corpora+=(--librispeech "${librispeech}")
${need_ll} && corpora+=(--librilight "${librilight}")
# shellcheck disable=SC2086
python -m espnet_distill.recipe.librispeech_data --data_root data --data_dirs ${data_dirs} "${corpora[@]}"
step_done data
log "done"
