#!/usr/bin/env bash
# The stages shared by every espnet-distill recipe.  A recipe's run.sh calls
# this script with its corpus-specific options; see egs/mini_synth/asr1/run.sh.
#
#   Stage 1: data preparation (the recipe's local/data.sh), then validation
#   Stage 2: Kaldi fbank features, CMVN statistics, validation
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

# General options
stage=1            # first stage to run
stop_stage=10000   # last stage to run
nj=4               # parallel jobs of data-parallel stages
# Data
train_set=train            # labelled training set
valid_set=dev              # validation set
test_sets="test"           # evaluation sets
extra_sets=""              # other data dirs that need features (e.g. low-resource subsets)
local_data_opts=""         # options passed to local/data.sh
# Features
fbank_config=conf/fbank.yaml
feat_dim=80

help_message="Usage: $0 [options]
e.g.: $0 --stage 1 --stop_stage 2 --nj 4
Options:
  --stage <n>            first stage to run (default: ${stage})
  --stop_stage <n>       last stage to run (default: ${stop_stage})
  --nj <n>               parallel jobs (default: ${nj})
  --train_set <name>     training data dir under data/ (default: ${train_set})
  --valid_set <name>     validation data dir (default: ${valid_set})
  --test_sets <names>    evaluation data dirs (default: \"${test_sets}\")
  --extra_sets <names>   other data dirs that need features (default: \"${extra_sets}\")
  --local_data_opts <s>  options of local/data.sh (default: \"${local_data_opts}\")
  --fbank_config <yaml>  fbank options (default: ${fbank_config})
  --feat_dim <n>         fbank dimension, as in the config (default: ${feat_dim})"

. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
. ./path.sh
. ./cmd.sh

# shellcheck disable=SC2206
all_sets=(${train_set} ${extra_sets} ${valid_set} ${test_sets})

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
  # shellcheck disable=SC2086
  local/data.sh ${local_data_opts}
  for dset in "${all_sets[@]}"; do
    python -m espnet_distill.bin.validate_data_dir --check_audio true "data/${dset}"
  done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "Stage 2: fbank features of ${all_sets[*]}"
  for dset in "${all_sets[@]}"; do
    utils/make_fbank.sh --cmd "${train_cmd}" --nj "${nj}" --fbank_config "${fbank_config}" \
      --feat_dim "${feat_dim}" "data/${dset}" "exp/make_fbank/${dset}" "fbank/${dset}"
  done
fi

log "Successfully finished in ${SECONDS}s"
