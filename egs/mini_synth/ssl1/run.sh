#!/usr/bin/env bash
# Pretraining of the mini recipe's HuBERT teacher, as ESPnet separates SSL pretraining
# (egs2/*/ssl1) from ASR: two HuBERT iterations on the unlabelled data/ssl (the 4-hour pool
# of 80 voices plus train), then the release of the teacher that egs/mini_synth/asr1 uses.
#
#   Stage 1: the mini corpus (asr1's local/data.sh; the audio is shared with asr1)
#   Stage 2: iteration-1 targets: k-means of MFCC frames            -> exp/kmeans_iter1
#   Stage 3: iteration-1 pretraining                                -> exp/pretrain_iter1/teacher.pt
#   Stage 4: iteration-2 targets: k-means of an iteration-1 layer   -> exp/kmeans_iter2
#   Stage 5: iteration-2 pretraining                                -> exp/pretrain_iter2/teacher.pt
#   Stage 6: release: the teacher in float16 with its sha256 and how it was made -> --release_dir
# Stages 2-5 are the template's stages 3-4 (utils/ssl_steps.sh), once per iteration.
#
# Every step records its inputs and reruns only when they change; an interrupted
# pretraining resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. utils/stage_steps.sh
SECONDS=0
run_args=$(printf ' %q' "$0" "$@")  # the command line, for the release (stage 6)
_args=("$@")  # for the supervised child (parse_options.sh takes no option named _...)

stage=1
stop_stage=10000
nj=4
local_data_opts=""
ssl_set=ssl
valid_set=dev
kmeans_iter1_config=conf/hubert_kmeans_iter1.yaml
pretrain_iter1_config=conf/hubert_pretrain_iter1.yaml
kmeans_iter2_config=conf/hubert_kmeans_iter2.yaml  # names the iteration-1 layer it clusters
pretrain_iter2_config=conf/hubert_pretrain_iter2.yaml
release_dir=../asr1/pretrained
release_name=hubert_mini
help_message="Usage: $0 [options]
e.g.: $0 --stop_stage 3   # data, then iteration 1 only
Options:
  --stage <n>                 first stage (default: ${stage})
  --stop_stage <n>            last stage (default: ${stop_stage})
  --nj <n>                    synthesis jobs (default: ${nj})
  --local_data_opts <s>       options of local/data.sh, e.g. \"--size tiny\" (default: \"${local_data_opts}\")
  --ssl_set <name>            unlabelled audio (default: ${ssl_set})
  --valid_set <name>          held-out audio for the masked-prediction accuracy (default: ${valid_set})
  --kmeans_iter1_config <y>   (default: ${kmeans_iter1_config})
  --pretrain_iter1_config <y> (default: ${pretrain_iter1_config})
  --kmeans_iter2_config <y>   (default: ${kmeans_iter2_config})
  --pretrain_iter2_config <y> (default: ${pretrain_iter2_config})
  --release_dir <dir>         where stage 6 writes <release_name>.pt, .pt.sha256 and .json (default: ${release_dir})
  --release_name <name>       (default: ${release_name})"
. utils/parse_options.sh  # --help prints the usage before anything is set up
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
# The set-up of a fresh machine (utils/setup.sh), then the stages as a supervised child: stopping
# this script stops its jobs (utils/supervise.sh).
if [ -z "${_ESPNET_DISTILL_SUPERVISED:-}" ]; then
  . utils/setup.sh
  install_tools
  . utils/supervise.sh
  _ESPNET_DISTILL_SUPERVISED=1 run_supervised "./$(basename "$0")" "${_args[@]}"
  exit 0
fi
. ./path.sh
. ./cmd.sh
. utils/train_jobs.sh
. utils/ssl_steps.sh

if [ "${stage}" -gt "${stop_stage}" ] || [ "${stage}" -gt 6 ] || [ "${stop_stage}" -lt 1 ]; then
  echo "$0: --stage ${stage} --stop_stage ${stop_stage} selects no stage (the stages are 1 to 6)" >&2
  exit 2
fi
# One run of this recipe dir at a time (the lock goes when every job of this run has ended).
mkdir -p exp
exec 9>>exp/.run.lock
if ! flock -n 9; then
  echo "$0: error: another run of this recipe is running in ${PWD} (it holds exp/.run.lock)" >&2
  exit 1
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  stage_start=${SECONDS}
  log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
  # shellcheck disable=SC2086
  local/data.sh --nj "${nj}" ${local_data_opts}
  python -m espnet_distill.recipe.validate_data_dir --check_audio true --need_text false "data/${ssl_set}"
  python -m espnet_distill.recipe.validate_data_dir --check_audio true "data/${valid_set}"
  log "Stage 1 done in $((SECONDS - stage_start))s"
fi

# Stages 2-5: the two iterations, each the template's k-means and pretraining steps (utils/ssl_steps.sh).
# Iteration 1 clusters MFCC frames; iteration 2 the layer of the iteration-1 teacher that its k-means
# config names.
for iter in 1 2; do
  targets_stage=$((2 * iter))
  pretrain_stage=$((2 * iter + 1))
  kmeans_config=kmeans_iter${iter}_config
  pretrain_config=pretrain_iter${iter}_config
  earlier_teacher=()  # the earlier iteration's teacher, whose layer iteration 2 clusters
  [ "${iter}" -eq 1 ] || earlier_teacher=("exp/pretrain_iter$((iter - 1))/teacher.pt")
  if [ "${stage}" -le "${targets_stage}" ] && [ "${stop_stage}" -ge "${targets_stage}" ]; then
    stage_start=${SECONDS}
    kmeans_step "Stage ${targets_stage}" "exp/kmeans_iter${iter}" "${!kmeans_config}" "${ssl_set}" "${valid_set}" \
      "${earlier_teacher[@]}"
    log "Stage ${targets_stage} done in $((SECONDS - stage_start))s"
  fi
  if [ "${stage}" -le "${pretrain_stage}" ] && [ "${stop_stage}" -ge "${pretrain_stage}" ]; then
    stage_start=${SECONDS}
    pretrain_step "Stage ${pretrain_stage}" "exp/pretrain_iter${iter}" "${!pretrain_config}" "exp/kmeans_iter${iter}" \
      "${ssl_set}" "${valid_set}"
    log "Stage ${pretrain_stage} done in $((SECONDS - stage_start))s"
  fi
done

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  stage_start=${SECONDS}
  log "Stage 6: releasing exp/pretrain_iter2/teacher.pt to ${release_dir}/${release_name}.pt"
  python -m espnet_distill.recipe.release_teacher --checkpoint exp/pretrain_iter2/teacher.pt \
    --out "${release_dir}/${release_name}.pt" --command "${run_args# }" \
    --results exp/pretrain_iter1/results.json exp/pretrain_iter2/results.json
  log "Stage 6 done in $((SECONDS - stage_start))s"
fi

log "Successfully finished in ${SECONDS}s"
