#!/usr/bin/env bash
# The study: the paper's comparisons on the mini corpus, resumable.
#
# The grid: students {shallow_wide, deep_thin} x losses {reg, reg_kl} x front-ends
# {wav_cnn, fbank} (the eight configs of conf/distill/), plus the teacher and each
# structure from scratch, each fine-tuned on the full labelled set (train) and on
# the low-resource subset (train_10pct, with conf/finetune/ctc_low.yaml), decoded
# and scored.  Then --seeds repeats the two key comparisons (distillation and
# fine-tuning with another seed, exp dirs suffixed _seed<N>): regression-only
# against regression + KL (deep_thin_reg, deep_thin_reg_kl), and wav_cnn against
# fbank (deep_thin_reg_kl, deep_thin_reg_kl_fbank).  RESULTS.md and plots/ are
# regenerated from exp/ after each part; rerunning skips finished work.
#
#   local/run_study.sh                       # the grid, then seeds 2 and 3
#   local/run_study.sh --size small          # a smaller corpus, faster
#   local/run_study.sh --seeds "" --nj 2     # the grid only; other options go to run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

size=default
seeds="2 3"
repeat_configs="conf/distill/deep_thin_reg.yaml conf/distill/deep_thin_reg_kl.yaml conf/distill/deep_thin_reg_kl_fbank.yaml"
# Options of this script come first; everything after them goes to run.sh.
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --repeat_configs) repeat_configs=$2; shift 2 ;;
    *) break ;;
  esac
done

study_opts=(--local_data_opts "--size ${size}" --finetune_sets "train train_10pct"
  --finetune_configs "train_10pct=conf/finetune/ctc_low.yaml")
log "The grid: every config of conf/distill/, the teacher and the structures from scratch"
./run.sh "${study_opts[@]}" --distill_configs all "$@"
for seed in ${seeds}; do
  log "Seed ${seed}: ${repeat_configs}"
  ./run.sh "${study_opts[@]}" --stage 5 --seed "${seed}" --distill_configs "${repeat_configs}" \
    --finetune_models distilled "$@"
done
log "Done: RESULTS.md and plots/"
