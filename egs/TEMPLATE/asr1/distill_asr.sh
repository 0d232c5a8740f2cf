#!/usr/bin/env bash
# The stages shared by every espnet-distill recipe.  A recipe's run.sh calls
# this script with its corpus-specific options; see egs/mini_synth/asr1/run.sh.
#
#   Stage 1: data preparation (the recipe's local/data.sh), then validation
#   Stage 2: Kaldi fbank features, CMVN statistics, validation
#   Stage 3: HuBERT iteration-1 targets: k-means of MFCC frames (only without --teacher_format)
#   Stage 4: the teacher: pretrain a small HuBERT on the targets, or load --teacher_path;
#            check that it loads and runs, and write <teacher_dir>/teacher.yaml
#   Stage 5: distillation of the teacher into each student of --distill_configs
#            (exp/distill_<config name>/student.pth and student.yaml)
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0
# The command line, for the run.sh that each training stage leaves in its exp dir
run_args=$(printf ' %q' "$0" "$@")

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
# Teacher
teacher_format=""          # fairseq|huggingface|torchaudio|espnet: use --teacher_path; empty: pretrain one
teacher_path=""            # checkpoint file (Hugging Face: model directory) of --teacher_format
trust_checkpoint=false     # true: allow pickled code in --teacher_path (only for files you trust)
kmeans_config=conf/hubert_kmeans.yaml
pretrain_config=conf/hubert_pretrain.yaml
teacher_dir=exp/teacher    # where teacher.yaml (what later stages load) is written
# Distillation
distill_configs="conf/distill/deep_thin_reg_kl.yaml"  # space-separated configs, or "all": conf/distill/*.yaml
distill_args=""            # extra options of espnet_distill.bin.distill_train (e.g. "--max_epoch 4")
ngpu=0                     # GPUs per training job (0: CPU)

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
  --feat_dim <n>         fbank dimension, as in the config (default: ${feat_dim})
  --teacher_format <f>   fairseq|huggingface|torchaudio|espnet; empty: pretrain a teacher (default: \"${teacher_format}\")
  --teacher_path <p>     checkpoint of --teacher_format (default: \"${teacher_path}\")
  --trust_checkpoint <b> load pickled code in --teacher_path (default: ${trust_checkpoint})
  --kmeans_config <yaml> k-means targets of the pretrained teacher (default: ${kmeans_config})
  --pretrain_config <y>  HuBERT pretraining (default: ${pretrain_config})
  --teacher_dir <dir>    teacher.yaml for later stages (default: ${teacher_dir})
  --distill_configs <s>  distillation configs, or all (default: \"${distill_configs}\")
  --distill_args <s>     extra options of distill_train (default: \"${distill_args}\")
  --ngpu <n>             GPUs per training job (default: ${ngpu})"

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

kmeans_dir=exp/hubert_kmeans
pretrain_dir=exp/hubert_pretrain

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  if [ -n "${teacher_format}" ]; then
    log "Stage 3: skipped (the teacher is ${teacher_format} ${teacher_path})"
  elif [ -f "${kmeans_dir}/.done" ] && [ "${kmeans_dir}/.done" -nt "data/${train_set}/wav.scp" ]; then
    log "Stage 3: k-means targets in ${kmeans_dir} are up to date"
  else
    log "Stage 3: k-means targets of MFCC frames: ${kmeans_dir}"
    ${train_cmd} "${kmeans_dir}/log/hubert_kmeans.log" \
      python -m espnet_distill.bin.hubert_kmeans --config "${kmeans_config}" --fit_data "data/${train_set}" \
      --data_dirs "data/${train_set}" "data/${valid_set}" --out_dir "${kmeans_dir}"
    touch "${kmeans_dir}/.done"
  fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  if [ -n "${teacher_format}" ]; then
    if [ ! -e "${teacher_path}" ]; then
      log "Error: --teacher_path '${teacher_path}' does not exist. Put the ${teacher_format} checkpoint there" \
        "(e.g. hubert_base_ls960.pt for fairseq, the facebook/hubert-base-ls960 directory for huggingface)."
      exit 1
    fi
    teacher_ckpt=${teacher_path}
  else
    teacher_format=torchaudio
    teacher_ckpt=${pretrain_dir}/teacher.pt
    if [ -f "${teacher_ckpt}" ] && [ "${teacher_ckpt}" -nt "${kmeans_dir}/.done" ]; then
      log "Stage 4: the pretrained teacher ${teacher_ckpt} is up to date"
    else
      log "Stage 4: pretraining a HuBERT teacher in ${pretrain_dir} (log: ${pretrain_dir}/train.log)"
      ${cuda_cmd} "${pretrain_dir}/log/hubert_pretrain.log" \
        python -m espnet_distill.bin.hubert_pretrain --config "${pretrain_config}" \
        --train_data "data/${train_set}" --valid_data "data/${valid_set}" \
        --label_dir "${kmeans_dir}" --out_dir "${pretrain_dir}"
    fi
  fi
  log "Stage 4: checking the teacher ${teacher_format} ${teacher_ckpt}"
  python -m espnet_distill.bin.check_teacher --teacher "${teacher_format}" --path "${teacher_ckpt}" \
    --trust_checkpoint "${trust_checkpoint}" --data_dir "data/${valid_set}" --out_dir "${teacher_dir}"
fi

if [ "${distill_configs}" = all ]; then
  distill_configs=$(ls conf/distill/*.yaml)
fi
distill_stats_dir=exp/distill_stats

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  for dset in "${train_set}" "${valid_set}"; do
    shape=${distill_stats_dir}/${dset}/speech_shape
    if [ ! -f "${shape}" ] || [ "data/${dset}/wav.scp" -nt "${shape}" ]; then
      python -m espnet_distill.bin.speech_shape "data/${dset}" "${shape}"
    fi
  done
  for conf in ${distill_configs}; do
    name=$(basename "${conf}" .yaml)
    dir=exp/distill_${name}
    if [ -f "${dir}/student.pth" ] && [ "${dir}/student.pth" -nt "${conf}" ] && [ "${dir}/student.pth" -nt "${teacher_dir}/teacher.yaml" ]; then
      log "Stage 5: ${dir}/student.pth is up to date"
      continue
    fi
    log "Stage 5: distilling into ${name} (log: ${dir}/train.log)"
    mkdir -p "${dir}"
    printf '#!/usr/bin/env bash\n# Reruns (resumes) this distillation; extra options are appended.\ncd %q\n%s --stage 5 --stop_stage 5 --distill_configs %q "$@"\n' \
      "${PWD}" "${run_args}" "${conf}" >"${dir}/run.sh"
    chmod +x "${dir}/run.sh"
    # shellcheck disable=SC2086
    ${cuda_cmd} --gpu "${ngpu}" "${dir}/train.log" \
      python -m espnet_distill.bin.distill_train --config "${conf}" --teacher_yaml "${teacher_dir}/teacher.yaml" \
      --train_data_path_and_name_and_type "data/${train_set}/wav.scp,speech,sound" \
      --train_shape_file "${distill_stats_dir}/${train_set}/speech_shape" \
      --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound" \
      --valid_shape_file "${distill_stats_dir}/${valid_set}/speech_shape" \
      --ngpu "${ngpu}" --resume true --output_dir "${dir}" ${distill_args}
    python -m espnet_distill.bin.check_student --data_dir "data/${valid_set}" "${dir}"
  done
fi

log "Successfully finished in ${SECONDS}s"
