# shellcheck shell=bash
# The steps that make a HuBERT teacher, shared by distill_asr.sh (stages 3-4: one iteration) and
# egs/mini_synth/ssl1/run.sh (two iterations).  Sourced after utils/stage_steps.sh and
# utils/train_jobs.sh; the jobs run through cmd.sh's train_cmd and cuda_cmd.  Each step declares what
# it reads beside its command and is skipped when none of it changed (needs_run).
#
# kmeans_step <stage> <out dir> <config> <ssl set> <valid set> [<teacher checkpoint>]
#   HuBERT targets of data/<ssl set> and data/<valid set> (<out dir>/<set>/labels, summary.json):
#   k-means of MFCC frames, or, given the teacher.pt of an earlier iteration, of the layer of it that
#   the config names.
# pretrain_step <stage> <out dir> <config> <targets dir> <ssl set> <valid set>
#   masked-prediction pretraining of a HuBERT on those targets: <out dir>/teacher.pt.  Resumes an
#   interrupted run; changed inputs start it again (stale checkpoints removed, logs kept).

kmeans_step() {
  local stage=$1 dir=$2 config=$3 ssl=$4 valid=$5 teacher=${6:-}
  local source="MFCC frames" features=()
  local inputs=(--input "config=${config}" --input "train_wav=data/${ssl}/wav.scp" --input "valid_wav=data/${valid}/wav.scp")
  if [ -n "${teacher}" ]; then
    inputs+=(--input "teacher=${teacher}")
    features=(--teacher torchaudio --teacher_path "${teacher}")
    source="a layer of ${teacher}"
  fi
  needs_run "${stage}: k-means targets" "${dir}" "${inputs[@]}" --output "${dir}/summary.json" || return 0
  log "${stage}: k-means targets of ${source}: ${dir}"
  # shellcheck disable=SC2086,SC2154  # cmd.sh's train_cmd, which may carry runner options
  ${train_cmd} "${dir}/log/hubert_kmeans.log" python -m espnet_distill.bin.hubert_kmeans --config "${config}" \
    --fit_data "data/${ssl}" --data_dirs "data/${ssl}" "data/${valid}" --out_dir "${dir}" "${features[@]}"
  step_done "${dir}"
}

pretrain_step() {
  local stage=$1 dir=$2 config=$3 targets=$4 ssl=$5 valid=$6
  needs_run "${stage}: HuBERT pretraining" "${dir}" --clear true --input "config=${config}" \
    --input "targets=${targets}/summary.json" --input "train_targets=${targets}/${ssl}/labels" \
    --input "valid_targets=${targets}/${valid}/labels" --input "train_wav=data/${ssl}/wav.scp" \
    --input "valid_wav=data/${valid}/wav.scp" --output "${dir}/teacher.pt" || return 0
  log "${stage}: pretraining a HuBERT teacher in ${dir} (log: ${dir}/train.log)"
  # shellcheck disable=SC2086,SC2154  # cmd.sh's cuda_cmd, which may carry runner options
  train_job "${dir}" ${cuda_cmd} "${dir}/log/hubert_pretrain.log" python -m espnet_distill.bin.hubert_pretrain \
    --config "${config}" --train_data "data/${ssl}" --valid_data "data/${valid}" --label_dir "${targets}" \
    --out_dir "${dir}"
  run_train_jobs "${stage}"
  step_done "${dir}"
}
