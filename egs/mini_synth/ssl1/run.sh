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
#
# Every step records its inputs and reruns only when they change; an interrupted
# pretraining resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# Sets up a fresh machine (Debian packages, tools/venv); quick once done. path.sh only activates.
"${ESPNET_DISTILL_ROOT:-$(cd ../../.. && pwd)}/tools/install.sh"
. utils/stage_steps.sh
# Stopping this script stops its jobs: the stages run as a supervised child (utils/supervise.sh).
if [ -z "${_ESPNET_DISTILL_SUPERVISED:-}" ]; then
  . utils/supervise.sh
  _ESPNET_DISTILL_SUPERVISED=1 run_supervised "./$(basename "$0")" "$@"
  exit 0
fi
SECONDS=0
run_args=$(printf ' %q' "$0" "$@")

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
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
. ./path.sh
. ./cmd.sh

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

# kmeans_step <dir> <config> [<hubert_kmeans option> ...]: targets of ssl_set and valid_set.
kmeans_step() {
  local dir=$1 config=$2
  shift 2
  ${train_cmd} "${dir}/log/hubert_kmeans.log" python -m espnet_distill.bin.hubert_kmeans --config "${config}" \
    --fit_data "data/${ssl_set}" --data_dirs "data/${ssl_set}" "data/${valid_set}" --out_dir "${dir}" "$@"
  step_done "${dir}"
}

# pretrain_step <what> <dir> <config> <kmeans dir>
pretrain_step() {
  local what=$1 dir=$2 config=$3 targets=$4
  needs_run "${what}" "${dir}" --clear true --input "config=${config}" --input "targets=${targets}/summary.json" \
    --input "train_targets=${targets}/${ssl_set}/labels" --input "valid_targets=${targets}/${valid_set}/labels" \
    --input "train_wav=data/${ssl_set}/wav.scp" --input "valid_wav=data/${valid_set}/wav.scp" \
    --output "${dir}/teacher.pt" || return 0
  log "${what}: pretraining in ${dir} (log: ${dir}/train.log)"
  python -m espnet_distill.bin.watch_progress --label "${what%%:*}" --parent $$ "${dir}" &
  local watcher=$!
  ${cuda_cmd} "${dir}/log/hubert_pretrain.log" python -m espnet_distill.bin.hubert_pretrain --config "${config}" \
    --train_data "data/${ssl_set}" --valid_data "data/${valid_set}" --label_dir "${targets}" --out_dir "${dir}"
  stop_watcher "${watcher}"
  step_done "${dir}"
}

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  stage_start=${SECONDS}
  log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
  # shellcheck disable=SC2086
  local/data.sh --nj "${nj}" ${local_data_opts}
  python -m espnet_distill.bin.validate_data_dir --check_audio true --need_text false "data/${ssl_set}"
  python -m espnet_distill.bin.validate_data_dir --check_audio true "data/${valid_set}"
  log "Stage 1 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  stage_start=${SECONDS}
  if needs_run "Stage 2: iteration-1 targets" exp/kmeans_iter1 --input "config=${kmeans_iter1_config}" \
      --input "train_wav=data/${ssl_set}/wav.scp" --input "valid_wav=data/${valid_set}/wav.scp" \
      --output exp/kmeans_iter1/summary.json; then
    kmeans_step exp/kmeans_iter1 "${kmeans_iter1_config}"
  fi
  log "Stage 2 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  stage_start=${SECONDS}
  pretrain_step "Stage 3: iteration-1 pretraining" exp/pretrain_iter1 "${pretrain_iter1_config}" exp/kmeans_iter1
  log "Stage 3 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  stage_start=${SECONDS}
  if needs_run "Stage 4: iteration-2 targets" exp/kmeans_iter2 --input "config=${kmeans_iter2_config}" \
      --input "teacher=exp/pretrain_iter1/teacher.pt" --input "train_wav=data/${ssl_set}/wav.scp" \
      --input "valid_wav=data/${valid_set}/wav.scp" --output exp/kmeans_iter2/summary.json; then
    kmeans_step exp/kmeans_iter2 "${kmeans_iter2_config}" --teacher torchaudio --teacher_path exp/pretrain_iter1/teacher.pt
  fi
  log "Stage 4 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  stage_start=${SECONDS}
  pretrain_step "Stage 5: iteration-2 pretraining" exp/pretrain_iter2 "${pretrain_iter2_config}" exp/kmeans_iter2
  log "Stage 5 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  stage_start=${SECONDS}
  log "Stage 6: releasing exp/pretrain_iter2/teacher.pt to ${release_dir}/${release_name}.pt"
  python -m espnet_distill.bin.release_teacher --checkpoint exp/pretrain_iter2/teacher.pt \
    --out "${release_dir}/${release_name}.pt" --command "${run_args# }" \
    --results exp/pretrain_iter1/results.json exp/pretrain_iter2/results.json
  log "Stage 6 done in $((SECONDS - stage_start))s"
fi

log "Successfully finished in ${SECONDS}s"
