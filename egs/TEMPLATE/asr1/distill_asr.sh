#!/usr/bin/env bash
# The stages shared by every espnet-distill recipe.  A recipe's run.sh calls
# this script with its corpus-specific options; see egs/mini_synth/asr1/run.sh.
#
#   Stage 1: data preparation (the recipe's local/data.sh), then validation
#   Stage 2: Kaldi fbank features, CMVN statistics, validation
#   Stage 3: HuBERT iteration-1 targets: k-means of MFCC frames of --ssl_set (only without --teacher_format)
#   Stage 4: the teacher: pretrain a small HuBERT on the targets, or load --teacher_path;
#            check that it loads and runs, and write <teacher_dir>/teacher.yaml
#   Stage 5: distillation of the teacher into each student of --distill_configs, each config with
#            each of --distill_frontends (exp/distill_<name>/student.pth and student.yaml; <name>: the
#            config's name, with _<front-end> added for a front-end that is not the config's own)
#   Stage 6: token list of the training transcripts (sentencepiece or characters); with --use_lm true,
#            the language model of shallow fusion on that list (ESPnet's LM task, exp/lm_<tokens>)
#   Stage 7: CTC fine-tuning of the teacher, the distilled students and the same
#            structures from scratch, on each of --finetune_sets (exp/asr_<model>_<set>)
#   Stage 8: decoding of --decode_sets over --nj jobs, sclite scoring (score_wer/, score_cer/); with
#            --use_lm true also the beam search (--lm_beam_size) without and with the LM, its weight
#            chosen on --valid_set among --lm_weights (utils/lm_steps.sh)
#   Stage 9: the size and CPU speed benchmark (exp/benchmark/) and RESULTS.md in the recipe
#            dir, regenerated from exp/ and printed
#   Stage 10: deployment: the best distilled student (lowest --valid_set CER after fine-tuning
#            on --train_set) exported to ONNX, fp32 and int8 (exp/deploy/<name>/), parity with
#            PyTorch checked on the first test set and every backend's CER scored, then PyTorch
#            fp32, ONNX Runtime fp32 and int8 timed at 1 and 4 threads (exp/deploy/benchmark/)
#   Stage 11 (with --superb_tasks): SUPERB-style evaluation of frozen upstreams: the log-mel
#            baseline, the teacher, each student and each structure with random weights, frozen,
#            a learnt weighted sum of their layers into a small downstream (ESPnet's RNN encoder,
#            CTC) per task (asr; pr: phones from espeak-ng) and seed (exp/superb_*; utils/superb_steps.sh)
#
# Rerunning is safe: every step records what produced its output (its configs, arguments
# and the upstream outputs it read, by content) in <out dir>/.stage_inputs.json, and is
# redone exactly when one of them changed; the log says why each step runs or is skipped.
# A changed training step starts again (its stale checkpoints removed, logs kept); an
# interrupted one with unchanged inputs resumes.
set -euo pipefail

. utils/stage_steps.sh
SECONDS=0
# The command line, for the run.sh that each training stage leaves in its exp dir
run_args=$(printf ' %q' "$0" "$@")

# General options
stage=1            # first stage to run
stop_stage=10000   # last stage to run
nj=4               # parallel jobs of data-parallel stages
# Data
train_set=train            # labelled training set
ssl_set=""                 # unlabelled audio of k-means, teacher pretraining and distillation (default: --train_set)
valid_set=dev              # validation set
test_sets="test"           # evaluation sets
extra_sets=""              # other data dirs (e.g. low-resource subsets): validated, and featurized unless --feats_sets
local_data_opts=""         # options passed to local/data.sh
# Features
fbank_config=conf/fbank.yaml
feat_dim=80
feats_sets=""              # data dirs that get fbank features (default: every set above)
cmvn_set=""                # the set whose CMVN statistics the Fbank front-end uses (default: --train_set)
# Teacher
teacher_format=""          # fairseq|huggingface|wavlm|torchaudio|espnet: use --teacher_path; empty: pretrain one
teacher_path=""            # checkpoint file (Hugging Face: model directory) of --teacher_format
teacher_sha256=""          # the expected SHA-256 of the --teacher_path file, checked whenever it is loaded (default: <path>.sha256)
trust_checkpoint=false     # true: allow pickled code in --teacher_path (only for files you trust)
kmeans_config=conf/hubert_kmeans.yaml
pretrain_config=conf/hubert_pretrain.yaml
teacher_dir=exp/teacher    # where teacher.yaml (what later stages load) is written
# Distillation
distill_configs="conf/distill/deep_thin_reg_kl.yaml"  # space-separated configs, or "all": conf/distill/*.yaml
distill_frontends=""       # front-ends each config is distilled with (e.g. "wav_cnn fbank"); empty: each config's own
distill_args=""            # extra options of espnet_distill.bin.distill_train (e.g. "--max_epoch 4")
teacher_targets=false      # true: stage 5 runs the teacher once and distills every student from its stored targets
teacher_targets_config=conf/teacher_targets.yaml  # precision, codeword top-k and shards of the stored targets
teacher_targets_dir=dump/teacher_targets  # where they are stored: <dir>/<ssl set>, <dir>/<valid set>
teacher_targets_students=""  # "<config>[:<front-end>] ..." the dump serves (default: this run's students)
ngpu=0                     # GPUs per training job (0: CPU)
train_jobs=1               # training jobs of stages 5 and 7 run at once
seed=""                    # a repeat: distillation and fine-tuning with this seed, exp dirs suffixed _seed<N>
train_threads=0            # CPU threads per training job (0: all cores / --train_jobs when --train_jobs > 1)
# Tokens
token_type=char            # bpe|char
nbpe=100                   # sentencepiece vocabulary (bpe)
bpe_model_type=unigram     # unigram|bpe
# Fine-tuning
finetune_config=conf/finetune/ctc.yaml
finetune_configs=""        # per-set configs, "<set>=<yaml> ..."; a set not named uses --finetune_config
finetune_sets=""           # labelled sets to fine-tune on (default: --train_set)
finetune_models="teacher distilled scratch"  # rows: the teacher, each distilled student, each structure from scratch
finetune_args=""           # extra options of espnet_distill.bin.asr_train
# Decoding
decode_sets=""             # sets to decode (default: --valid_set and --test_sets)
beam_size=1                # 1: greedy CTC; more: CTC prefix beam search
skip_bad_utterances=false  # decode the rest when an utterance cannot be read
# Language model (shallow fusion)
use_lm=false               # true: train an LM in stage 6 and decode with it too in stage 8
lm_config=conf/lm/rnn.yaml # ESPnet's LM task: lm seq_rnn or transformer, and the trainer's options
lm_train_text=""           # the LM's text: plain files, one sentence a line (.gz too)
lm_train_sets=""           # data sets whose transcripts join the LM's text
lm_args=""                 # extra options of espnet_distill.bin.lm_train
lm_weights="0.2 0.4 0.6"   # the LM weights tried on --valid_set (with 0); the best decodes the other sets
lm_beam_size=10            # the beam of the decodings without and with the LM
lm_tune_metric=cer         # cer|wer: what the weight is chosen by
# Benchmark
benchmark_args=""          # extra options of espnet_distill.bin.benchmark (e.g. "--max_utts 200 --repeats 1")
benchmark_students=""      # more students for the stage 9 benchmark, by name (exp/distill_<name>), e.g. the study's pruned ones
# SUPERB-style evaluation of frozen upstreams (stage 11)
superb_tasks=""            # asr and/or pr; empty: stage 11 is skipped
superb_upstreams="fbank teacher distilled scratch"  # the rows: log-mel, the teacher, each student, each structure untrained
superb_seeds="1"           # seeds of the downstream's training
superb_train_set=""        # the downstreams' labelled training set (default: --train_set)
superb_args=""             # extra options of espnet_distill.bin.asr_train for the downstreams
superb_lexicon=""          # pr's phones from this lexicon (LibriSpeech's); empty: espeak-ng's en-us phonemes

_int_options="seed"       # integers with an empty default (parse_options.sh checks the rest by their defaults)
_int_list_options="superb_seeds"  # lists of integers
help_message="Usage: $0 [options]
e.g.: $0 --stage 1 --stop_stage 2 --nj 4
Options:
  --stage <n>            first stage to run (default: ${stage})
  --stop_stage <n>       last stage to run (default: ${stop_stage})
  --nj <n>               parallel jobs (default: ${nj})
  --train_set <name>     training data dir under data/ (default: ${train_set})
  --ssl_set <name>       unlabelled audio of stages 3-5, no text needed (default: the train set)
  --valid_set <name>     validation data dir (default: ${valid_set})
  --test_sets <names>    evaluation data dirs (default: \"${test_sets}\")
  --extra_sets <names>   other data dirs to validate and featurize (default: \"${extra_sets}\")
  --local_data_opts <s>  options of local/data.sh (default: \"${local_data_opts}\")
  --fbank_config <yaml>  fbank options (default: ${fbank_config})
  --feat_dim <n>         fbank dimension, as in the config (default: ${feat_dim})
  --feats_sets <names>   data dirs that get features (default: all of the above)
  --cmvn_set <name>      CMVN statistics of the Fbank front-end (default: the train set)
  --teacher_format <f>   fairseq|huggingface|wavlm|torchaudio|espnet; empty: pretrain a teacher (default: \"${teacher_format}\")
  --teacher_path <p>     checkpoint of --teacher_format (default: \"${teacher_path}\")
  --teacher_sha256 <h>   expected SHA-256 of the --teacher_path file (default: its <path>.sha256 file, if any)
  --trust_checkpoint <b> load pickled code in --teacher_path (default: ${trust_checkpoint})
  --kmeans_config <yaml> k-means targets of the pretrained teacher (default: ${kmeans_config})
  --pretrain_config <y>  HuBERT pretraining (default: ${pretrain_config})
  --teacher_dir <dir>    teacher.yaml for later stages (default: ${teacher_dir})
  --distill_configs <s>  distillation configs, or all (default: \"${distill_configs}\")
  --distill_frontends <s>  front-ends to distill each config with, of wav_cnn and fbank (e.g. \"wav_cnn fbank\"):
                         config C with front-end F gives the student C when F is C's own front-end, else C_F
                         (default: \"${distill_frontends}\": each config with its own front-end)
  --distill_args <s>     extra options of distill_train (default: \"${distill_args}\")
  --teacher_targets <b>  stage 5 stores the teacher's targets once and distills every student from them
                         (default: ${teacher_targets})
  --teacher_targets_config <y>  dtype, topk, shard_utts of the stored targets (default: ${teacher_targets_config})
  --teacher_targets_dir <d>     where they are stored (default: ${teacher_targets_dir})
  --teacher_targets_students <s>  \"<config>[:<front-end>] ...\": the students the one dump serves, e.g. a
                         study's runs (default: this run's students)
  --ngpu <n>             GPUs per training job (default: ${ngpu})
  --train_jobs <n>       training jobs run at once in stages 5 and 7 (default: ${train_jobs})
  --seed <n>             repeat stages 5-8 with this seed into exp dirs suffixed _seed<n> (default: the configs' seed)
  --train_threads <n>    threads per training job; 0: cores / train_jobs (default: ${train_threads})
  --token_type <t>       bpe|char (default: ${token_type})
  --nbpe <n>             sentencepiece vocabulary (default: ${nbpe})
  --finetune_config <y>  fine-tuning config (default: ${finetune_config})
  --finetune_configs <s> per-set configs, <set>=<yaml> ... (default: \"${finetune_configs}\")
  --finetune_sets <s>    labelled sets to fine-tune on (default: the train set)
  --finetune_models <s>  teacher, distilled, scratch (default: \"${finetune_models}\")
  --finetune_args <s>    extra options of asr_train (default: \"${finetune_args}\")
  --decode_sets <s>      sets to decode (default: the valid and test sets)
  --beam_size <n>        1: greedy CTC, more: prefix beam search (default: ${beam_size})
  --skip_bad_utterances <b>  decode the rest when an utterance is unreadable (default: ${skip_bad_utterances})
  --use_lm <b>           train an LM (stage 6) and decode with shallow fusion too (stage 8) (default: ${use_lm})
  --lm_config <yaml>     the LM's training config (default: ${lm_config})
  --lm_train_text <s>    the LM's text files, one sentence a line (default: \"${lm_train_text}\")
  --lm_train_sets <s>    data sets whose transcripts join the LM's text (default: \"${lm_train_sets}\")
  --lm_args <s>          extra options of lm_train (default: \"${lm_args}\")
  --lm_weights <s>       LM weights tried on the valid set; the best decodes the rest (default: \"${lm_weights}\")
  --lm_beam_size <n>     beam of the decodings without and with the LM (default: ${lm_beam_size})
  --lm_tune_metric <m>   cer|wer: what the LM weight is chosen by (default: ${lm_tune_metric})
  --benchmark_args <s>   extra options of the stage 9 benchmark (default: \"${benchmark_args}\")
  --benchmark_students <\"name ...\">  more distilled students (exp/distill_<name>) for the stage 9 benchmark
                         (default: \"${benchmark_students}\")
  --superb_tasks <s>     stage 11's tasks, of asr and pr (default: \"${superb_tasks}\": none)
  --superb_upstreams <s> of fbank, teacher, distilled, scratch (default: \"${superb_upstreams}\")
  --superb_seeds <s>     the downstreams' seeds (default: \"${superb_seeds}\")
  --superb_train_set <s> the downstreams' training set (default: the train set)
  --superb_args <s>      extra options of asr_train for the downstreams (default: \"${superb_args}\")
  --superb_lexicon <f>   pr's pronunciation lexicon (default: \"${superb_lexicon}\": espeak-ng)"

. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
. ./path.sh
. ./cmd.sh
. utils/train_jobs.sh
. utils/ssl_steps.sh
. utils/distill_students.sh
. utils/superb_steps.sh
. utils/lm_steps.sh

case "${token_type}" in bpe | char) ;; *) echo "$0: option --token_type takes bpe or char, not '${token_type}'" >&2; exit 2 ;; esac
case "${lm_tune_metric}" in cer | wer) ;; *) echo "$0: option --lm_tune_metric takes cer or wer, not '${lm_tune_metric}'" >&2; exit 2 ;; esac
if ${use_lm}; then
  [ "${lm_beam_size}" -gt 1 ] || { echo "$0: option --lm_beam_size must be above 1 (shallow fusion needs the beam search)" >&2; exit 2; }
  for weight in ${lm_weights}; do
    if ! [[ "${weight}" =~ ^[0-9]*\.?[0-9]+$ ]] || [[ "${weight}" =~ ^0*\.?0*$ ]]; then
      echo "$0: option --lm_weights takes positive numbers, not '${weight}'" >&2
      exit 2
    fi
  done
  [ -n "${lm_weights}" ] || { echo "$0: option --lm_weights needs at least one weight with --use_lm true" >&2; exit 2; }
fi
for kind in ${finetune_models}; do
  case "${kind}" in
    teacher | distilled | scratch) ;;
    *) echo "$0: option --finetune_models takes teacher, distilled and scratch, not '${kind}'" >&2; exit 2 ;;
  esac
done
for kind in ${superb_tasks}; do
  case "${kind}" in asr | pr) ;; *) echo "$0: option --superb_tasks takes asr and pr, not '${kind}'" >&2; exit 2 ;; esac
done
for kind in ${superb_upstreams}; do
  case "${kind}" in
    fbank | teacher | distilled | scratch) ;;
    *) echo "$0: option --superb_upstreams takes fbank, teacher, distilled and scratch, not '${kind}'" >&2; exit 2 ;;
  esac
done

last_stage=11
if [ "${stage}" -gt "${stop_stage}" ] || [ "${stage}" -gt "${last_stage}" ] || [ "${stop_stage}" -lt 1 ]; then
  echo "$0: --stage ${stage} --stop_stage ${stop_stage} selects no stage (the stages are 1 to ${last_stage})" >&2
  exit 2
fi
# The training stages (4: pretraining, without --teacher_format; 5: distillation; 7: fine-tuning) on GPUs:
# checked before any work.
runs_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
if [ "${ngpu}" -gt 0 ] && { { [ -z "${teacher_format}" ] && runs_stage 4; } || runs_stage 5 || runs_stage 7; }; then
  visible=$(python -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null) || visible=0
  if [ "${visible}" -lt "${ngpu}" ]; then
    if [ "${visible}" -eq 0 ]; then what="no CUDA device is visible"; else what="only ${visible} CUDA devices are visible"; fi
    echo "$0: error: --ngpu ${ngpu}: ${what} (CUDA_VISIBLE_DEVICES='${CUDA_VISIBLE_DEVICES-unset}');" \
      "train on the CPU with --ngpu 0, or run stages 4-7 on a machine with ${ngpu} GPUs" >&2
    exit 1
  fi
fi

# One run of a recipe directory at a time: a second run.sh here would race the first on the same
# files.  Repeats (--seed N) write their own exp dirs, so they may run side by side, but not beside a
# plain run.  The lock is released when this script and every job it started have ended.
mkdir -p exp
exec 9>>exp/.run.lock
if [ -n "${seed}" ]; then lock_mode=-s; else lock_mode=-x; fi
if ! flock -n "${lock_mode}" 9; then
  echo "$0: error: another run of this recipe is running in ${PWD} (it holds exp/.run.lock); wait for it to end, or stop it" >&2
  exit 1
fi
if [ -n "${seed}" ]; then
  exec 8>>"exp/.run_seed${seed}.lock"
  if ! flock -n 8; then
    echo "$0: error: another run with --seed ${seed} is running in ${PWD} (it holds exp/.run_seed${seed}.lock)" >&2
    exit 1
  fi
fi

# --- Derived values -------------------------------------------------------------

# A repeat (--seed N) trains with that seed into its own exp dirs; the teacher is shared.
seed_args=""
exp_suffix=""
if [ -n "${seed}" ]; then
  seed_args="--seed ${seed}"
  exp_suffix=_seed${seed}
fi

# shellcheck disable=SC2206
all_sets=(${train_set} ${extra_sets} ${valid_set} ${test_sets})
# shellcheck disable=SC2206
[ -n "${feats_sets}" ] && feat_sets=(${feats_sets}) || feat_sets=("${all_sets[@]}")
[ -n "${cmvn_set}" ] || cmvn_set=${train_set}
[ -n "${ssl_set}" ] || ssl_set=${train_set}
kmeans_dir=exp/hubert_kmeans
pretrain_dir=exp/hubert_pretrain
# The teacher checkpoint later stages read: --teacher_path, or the one stage 4 pretrains
# (--teacher_path and its --teacher_sha256 are then unused).
# A teacher file's expected SHA-256 travels with it: --teacher_sha256, else <teacher_path>.sha256 beside
# the file (sha256sum's format; the released teacher has one), else none.
if [ -n "${teacher_format}" ]; then
  teacher_kind=${teacher_format}
  teacher_ckpt=${teacher_path}
  if [ -z "${teacher_sha256}" ] && [ -f "${teacher_path}.sha256" ]; then
    teacher_sha256=$(cut -d' ' -f1 "${teacher_path}.sha256")
    [ -n "${teacher_sha256}" ] || { echo "$0: error: ${teacher_path}.sha256 holds no checksum" >&2; exit 1; }
  fi
else
  teacher_kind=torchaudio
  teacher_ckpt=${pretrain_dir}/teacher.pt
  teacher_sha256=""
fi
if [ "${distill_configs}" = all ]; then
  distill_configs=$(ls conf/distill/*.yaml)
fi
# The students, "<name> <config> <front-end> <start> <role>" each (utils/distill_students.sh): stage 5
# distills them into exp/distill_<name>, each after its start (a pruned student's pruning run); stages 7-11
# read the students (role "student"), not the starts added for them (role "start").
students=()
distilled=()
if [ "${stop_stage}" -ge 5 ]; then
  student_list=$(distill_students "${distill_configs}" "${distill_frontends}") || exit 2
  [ -z "${student_list}" ] || mapfile -t distilled <<<"${student_list}"
  for student in "${distilled[@]}"; do [[ "${student}" == *" start" ]] || students+=("${student}"); done
fi
distill_stats_dir=exp/distill_stats
teacher_inputs=(--input "teacher=${teacher_dir}/teacher.yaml" --input "teacher_checkpoint=${teacher_ckpt}")
[ -n "${finetune_sets}" ] || finetune_sets=${train_set}
[ -n "${superb_train_set}" ] || superb_train_set=${train_set}
[ -n "${decode_sets}" ] || decode_sets="${valid_set} ${test_sets}"
if [ "${token_type}" = bpe ]; then
  token_dir=data/token_list/bpe_${bpe_model_type}${nbpe}
else
  token_dir=data/token_list/${token_type}
fi
bpe_opts=()
[ "${token_type}" = bpe ] && bpe_opts=(--bpemodel "${token_dir}/bpe.model")
if [ "${beam_size}" -gt 1 ]; then decode_name=decode_ctc_beam${beam_size}; else decode_name=decode_ctc_greedy; fi
lm_dir=exp/lm_$(basename "${token_dir}")

# --- Functions of the stages ------------------------------------------------------
# Training jobs (stages 4, 5 and 7) are queued by train_job; run_train_jobs runs them, at most
# --train_jobs at a time, shows their progress (step, loss, ETA; recipe/watch_progress), and fails naming
# every job that failed (utils/train_jobs.sh).
# Small models use two cores poorly: on 2 cores, two 1-thread jobs train 1.5x
# faster than one 2-thread job after the other.
train_job_opts=()
if [ "${train_jobs}" -gt 1 ]; then
  if [ "${train_threads}" -le 0 ]; then
    train_threads=$(( $(nproc) / train_jobs ))
    [ "${train_threads}" -ge 1 ] || train_threads=1
  fi
fi
[ "${train_threads}" -gt 0 ] && train_job_opts=(--num_threads "${train_threads}")

make_results() {  # RESULTS.md and plots/ from exp/ (stages 9 and 10)
  # shellcheck disable=SC2086
  python -m espnet_distill.recipe.make_results --exp_dir exp --sets ${test_sets} ${valid_set} --train_set "${train_set}" --out RESULTS.md
}

speech_shape_of() {  # <set>: writes exp/distill_stats/<set>/speech_shape unless it is up to date
  local dir=${distill_stats_dir}/$1
  if needs_run "speech shapes" "${dir}" --input "wav=data/$1/wav.scp" --output "${dir}/speech_shape"; then
    python -m espnet_distill.recipe.speech_shape "data/$1" "${dir}/speech_shape"
    step_done "${dir}"
  fi
}

distill_one() {  # <config> <front-end> <exp dir> [<option> ...]: --frontend after --config overrides the config's
  local conf=$1 frontend=$2 dir=$3
  shift 3
  # shellcheck disable=SC2086
  ${cuda_cmd} "${train_job_opts[@]}" --gpu "${ngpu}" "${dir}/train.log" \
    python -m espnet_distill.bin.distill_train --config "${conf}" --frontend "${frontend}" \
    --teacher_yaml "${teacher_dir}/teacher.yaml" \
    --train_data_path_and_name_and_type "data/${ssl_set}/wav.scp,speech,sound" \
    --train_shape_file "${distill_stats_dir}/${ssl_set}/speech_shape" \
    --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound" \
    --valid_shape_file "${distill_stats_dir}/${valid_set}/speech_shape" \
    --fbank_stats "data/${cmvn_set}/feats_stats.npz" "${targets_opts[@]}" \
    --ngpu "${ngpu}" --resume true --output_dir "${dir}" "$@" ${seed_args} ${distill_args} || return 1
  python -m espnet_distill.recipe.check_student --data_dir "data/${valid_set}" "${dir}" && step_done "${dir}"
}

targets_opts=()
targets_inputs=()
if ${teacher_targets}; then
  targets_opts=(--teacher_targets "${teacher_targets_dir}")
  targets_inputs=(--input "targets_train=${teacher_targets_dir}/${ssl_set}/manifest.json"
                  --input "targets_valid=${teacher_targets_dir}/${valid_set}/manifest.json")
fi

dump_teacher_targets() {  # stage 5 with --teacher_targets true: the teacher's targets of what every student needs
  local student name conf frontend configs=() stamp device_opts=()
  [ "${ngpu}" -gt 0 ] && device_opts=(--device cuda)
  if [ -n "${teacher_targets_students}" ]; then
    for student in ${teacher_targets_students}; do configs+=(--distill_config "${student}"); done
  else
    for student in "${distilled[@]}"; do
      read -r name conf frontend _ <<<"${student}"
      configs+=(--distill_config "${conf}:${frontend}")
    done
  fi
  stamp=(--clear true "${teacher_inputs[@]}" --input "targets_config=${teacher_targets_config}"
         --input "ssl_wav=data/${ssl_set}/wav.scp" --input "valid_wav=data/${valid_set}/wav.scp"
         --arg "students=${configs[*]}" --output "${teacher_targets_dir}/${ssl_set}/manifest.json"
         --output "${teacher_targets_dir}/${valid_set}/manifest.json")
  for conf in $(printf '%s\n' "${configs[@]}" | grep -v '^--' | sed 's/:[a-z_]*$//' | sort -u); do
    stamp+=(--input "config_$(basename "${conf}" .yaml)=${conf}")
  done
  needs_run "Stage 5: the teacher's stored targets" "${teacher_targets_dir}" "${stamp[@]}" || return 0
  log "Stage 5: storing the teacher's targets of ${ssl_set} and ${valid_set} (log: ${teacher_targets_dir}/dump.log)"
  mkdir -p "${teacher_targets_dir}"
  python -m espnet_distill.bin.dump_teacher_targets --config "${teacher_targets_config}" \
    --teacher_yaml "${teacher_dir}/teacher.yaml" "${configs[@]}" --fbank_stats "data/${cmvn_set}/feats_stats.npz" \
    --data_dir "data/${ssl_set}" --data_dir "data/${valid_set}" --output_dir "${teacher_targets_dir}" \
    "${device_opts[@]}" >"${teacher_targets_dir}/dump.log" 2>&1 \
    || { log "Error: storing the teacher's targets failed (see ${teacher_targets_dir}/dump.log)"; exit 1; }
  step_done "${teacher_targets_dir}"
}

finetune_config_of() {  # <train set>: its config from --finetune_configs, else --finetune_config
  local entry
  for entry in ${finetune_configs}; do
    [ "${entry%%=*}" = "$1" ] && { echo "${entry#*=}"; return 0; }
  done
  echo "${finetune_config}"
}

finetune_one() {  # <student dir> <init weights> <front-end> <train set> <exp dir>
  local student=$1 init=$2 frontend=$3 ftset=$4 dir=$5
  # shellcheck disable=SC2086
  ${cuda_cmd} "${train_job_opts[@]}" --gpu "${ngpu}" "${dir}/train.log" \
    python -m espnet_distill.bin.asr_train --config "$(finetune_config_of "${ftset}")" --frontend "${frontend}" \
    --init_student "${student}" --init_student_weights "${init}" \
    --token_list "${token_dir}/tokens.txt" --token_type "${token_type}" "${bpe_opts[@]}" \
    --train_data_path_and_name_and_type "data/${ftset}/wav.scp,speech,sound" \
    --train_data_path_and_name_and_type "data/${ftset}/text,text,text" \
    --train_shape_file "${distill_stats_dir}/${ftset}/speech_shape" \
    --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound" \
    --valid_data_path_and_name_and_type "data/${valid_set}/text,text,text" \
    --valid_shape_file "${distill_stats_dir}/${valid_set}/speech_shape" \
    --ngpu "${ngpu}" --resume true --output_dir "${dir}" ${seed_args} ${finetune_args} || return 1
  step_done "${dir}"
}

# The models to fine-tune (stages 7-8): "<name> <student dir> <init weights>" in asr_models.  The
# from-scratch ones depend on the distilled students' structures, so this runs after stage 5.
asr_models=()
set_asr_models() {
  asr_models=()
  for kind in ${finetune_models}; do
    case "${kind}" in
      teacher) asr_models+=("teacher${exp_suffix} exp/teacher_student true") ;;
      distilled) for student in "${students[@]}"; do
          read -r name _ _ <<<"${student}"; asr_models+=("${name}${exp_suffix} exp/distill_${name}${exp_suffix} true"); done ;;
      scratch)  # one per structure: students that differ only in their loss share it (named after the first)
        student_dirs=()
        for student in "${students[@]}"; do read -r name _ _ <<<"${student}"; student_dirs+=("exp/distill_${name}${exp_suffix}"); done
        for student in $(python -m espnet_distill.recipe.scratch_models "${student_dirs[@]}"); do
          name=${student#exp/distill_}; asr_models+=("scratch_${name} ${student} false"); done ;;
    esac
  done
}

# --- Stages -----------------------------------------------------------------------

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  stage_start=${SECONDS}
  log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
  # shellcheck disable=SC2086
  local/data.sh ${local_data_opts}
  for dset in "${all_sets[@]}"; do
    python -m espnet_distill.recipe.validate_data_dir --check_audio true "data/${dset}"
  done
  if [[ " ${all_sets[*]} " != *" ${ssl_set} "* ]]; then
    python -m espnet_distill.recipe.validate_data_dir --check_audio true --need_text false "data/${ssl_set}"
  fi
  log "Stage 1 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  stage_start=${SECONDS}
  log "Stage 2: fbank features of ${feat_sets[*]}"
  for dset in "${feat_sets[@]}"; do
    utils/make_fbank.sh --cmd "${train_cmd}" --nj "${nj}" --fbank_config "${fbank_config}" \
      --feat_dim "${feat_dim}" "data/${dset}" "exp/make_fbank/${dset}" "fbank/${dset}"
  done
  log "Stage 2 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  stage_start=${SECONDS}
  if [ -n "${teacher_format}" ]; then
    log "Stage 3: skipped (the teacher is ${teacher_format} ${teacher_path})"
  else
    kmeans_step "Stage 3" "${kmeans_dir}" "${kmeans_config}" "${ssl_set}" "${valid_set}"
  fi
  log "Stage 3 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  stage_start=${SECONDS}
  if [ -n "${teacher_format}" ]; then
    if [ ! -e "${teacher_path}" ]; then
      log "Error: --teacher_path '${teacher_path}' does not exist. Put the ${teacher_format} checkpoint there" \
        "(e.g. hubert_base_ls960.pt for fairseq, the facebook/hubert-base-ls960 directory for huggingface)."
      exit 1
    fi
  else
    pretrain_step "Stage 4" "${pretrain_dir}" "${pretrain_config}" "${kmeans_dir}" "${ssl_set}" "${valid_set}"
  fi
  if needs_run "Stage 4: teacher check" "${teacher_dir}" --input "checkpoint=${teacher_ckpt}" \
      --arg "format=${teacher_kind}" --arg "path=${teacher_ckpt}" --arg "trust_checkpoint=${trust_checkpoint}" \
      --arg "sha256=${teacher_sha256}" \
      --output "${teacher_dir}/teacher.yaml"; then
    log "Stage 4: checking the teacher ${teacher_kind} ${teacher_ckpt}"
    python -m espnet_distill.recipe.check_teacher --teacher "${teacher_kind}" --path "${teacher_ckpt}" \
      --trust_checkpoint "${trust_checkpoint}" --sha256 "${teacher_sha256}" --data_dir "data/${valid_set}" --out_dir "${teacher_dir}"
    step_done "${teacher_dir}"
  fi
  log "Stage 4 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  stage_start=${SECONDS}
  speech_shape_of "${ssl_set}"
  speech_shape_of "${valid_set}"
  if ${teacher_targets}; then
    dump_teacher_targets
  fi
  # In waves: a student whose start (its --init_student) is distilled in this run waits for it.
  pending=("${distilled[@]}")
  while [ "${#pending[@]}" -gt 0 ]; do
    waiting=()
    pending_names=" "
    for student in "${pending[@]}"; do pending_names+="${student%% *} "; done
    for student in "${pending[@]}"; do
      read -r name conf frontend start _ <<<"${student}"
      if [ "${start}" != - ] && [[ "${pending_names}" == *" ${start} "* ]]; then
        waiting+=("${student}")
        continue
      fi
      dir=exp/distill_${name}${exp_suffix}
      stamp=(--clear true --input "config=${conf}" "${teacher_inputs[@]}" "${targets_inputs[@]}" --input "train_wav=data/${ssl_set}/wav.scp"
             --input "valid_wav=data/${valid_set}/wav.scp" --arg "distill_args=${distill_args}" --arg "seed=${seed}"
             --output "${dir}/student.pth")
      # A front-end other than the config's own (the student <config>_<front-end>) is an argument of the step.
      if [ "${name}" != "$(basename "${conf}" .yaml)" ]; then
        stamp+=(--arg "frontend=${frontend}")
      fi
      if [ "${frontend}" = fbank ]; then
        stamp+=(--input "fbank_stats=data/${cmvn_set}/feats_stats.npz")
      fi
      start_opts=()
      if [ "${start}" != - ]; then
        start_dir=exp/distill_${start}${exp_suffix}
        start_opts=(--init_student "${start_dir}")
        stamp+=(--input "init_student=${start_dir}/student.pth" --input "init_student_yaml=${start_dir}/student.yaml")
      fi
      needs_run "Stage 5: distillation into ${name}" "${dir}" "${stamp[@]}" || continue
      log "Stage 5: distilling into ${name} (${frontend} front-end${start_opts[*]:+, from ${start_dir}}; log: ${dir}/train.log)"
      mkdir -p "${dir}"
      printf '#!/usr/bin/env bash\n# Reruns (resumes) this distillation; extra options are appended.\ncd %q\n%s --stage 5 --stop_stage 5 --distill_configs %q --distill_frontends %q "$@"\n' \
        "${PWD}" "${run_args}" "${conf}" "${frontend}" >"${dir}/run.sh"
      chmod +x "${dir}/run.sh"
      train_job "${dir}" distill_one "${conf}" "${frontend}" "${dir}" "${start_opts[@]}"
    done
    run_train_jobs "Stage 5"
    pending=("${waiting[@]}")
  done
  log "Stage 5 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  stage_start=${SECONDS}
  # The token dir's name holds the vocabulary size and model type of a bpe list.
  if needs_run "Stage 6: token list" "${token_dir}" --input "text=data/${train_set}/text" \
      --arg "token_type=${token_type}" --output "${token_dir}/tokens.txt"; then
    log "Stage 6: ${token_type} token list of data/${train_set}/text: ${token_dir}"
    python -m espnet_distill.recipe.make_tokens --token_type "${token_type}" --vocab_size "${nbpe}" \
      --bpe_model_type "${bpe_model_type}" --text "data/${train_set}/text" --out_dir "${token_dir}"
    step_done "${token_dir}"
  fi
  if ${use_lm}; then lm_train_step "${lm_dir}"; fi
  log "Stage 6 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  stage_start=${SECONDS}
  set_asr_models
  if [[ " ${finetune_models} " == *" teacher "* ]] && needs_run "Stage 7: teacher export" exp/teacher_student \
      "${teacher_inputs[@]}" --output exp/teacher_student/student.pth; then
    log "Stage 7: the teacher in the student format: exp/teacher_student"
    python -m espnet_distill.bin.export_teacher --teacher_yaml "${teacher_dir}/teacher.yaml" --out_dir exp/teacher_student
    step_done exp/teacher_student
  fi
  for ftset in ${finetune_sets}; do
    for model in "${asr_models[@]}"; do
      read -r name student init <<<"${model}"
      dir=exp/asr_${name}_${ftset}
      stamp=(--clear true --input "config=$(finetune_config_of "${ftset}")" --input "student=${student}/student.pth"
             --input "student_yaml=${student}/student.yaml" --input "tokens=${token_dir}/tokens.txt"
             --input "train_wav=data/${ftset}/wav.scp" --input "train_text=data/${ftset}/text"
             --input "valid_wav=data/${valid_set}/wav.scp" --input "valid_text=data/${valid_set}/text"
             --arg "init_weights=${init}" --arg "finetune_args=${finetune_args}" --arg "seed=${seed}"
             --output "${dir}/config.yaml")
      [ "${token_type}" = bpe ] && stamp+=(--input "bpe_model=${token_dir}/bpe.model")
      needs_run "Stage 7: fine-tuning of ${name} on ${ftset}" "${dir}" "${stamp[@]}" || continue
      speech_shape_of "${ftset}"
      speech_shape_of "${valid_set}"
      # The fine-tuning config names a front-end; each student brings its own (wav_cnn, fbank).
      frontend=$(python -m espnet_distill.recipe.query "${student}/student.yaml" frontend)
      log "Stage 7: fine-tuning ${name} (${frontend} front-end) on ${ftset} (log: ${dir}/train.log)"
      mkdir -p "${dir}"
      train_job "${dir}" finetune_one "${student}" "${init}" "${frontend}" "${ftset}" "${dir}"
    done
  done
  run_train_jobs "Stage 7"
  log "Stage 7 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
  stage_start=${SECONDS}
  if ${use_lm} && [ ! -f "${lm_dir}/perplexity.json" ]; then
    log "Error: --use_lm true: no trained LM in ${lm_dir}; run stage 6 with --use_lm true first"
    exit 1
  fi
  set_asr_models
  for ftset in ${finetune_sets}; do
    for model in "${asr_models[@]}"; do
      read -r name _ _ <<<"${model}"
      dir=exp/asr_${name}_${ftset}
      # The model is the fine-tuning run that finished last in ${dir} (its run id).
      model_run=$(python -m espnet_distill.recipe.stage_stamp run_id "${dir}")
      for dset in ${decode_sets}; do
        decode_step "${dir}" "${model_run}" "${dset}" "${decode_name}" "${beam_size}"
      done
      if ${use_lm}; then lm_decode_model "${dir}" "${model_run}" "${lm_dir}"; fi
    done
  done
  log "Stage 8 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
  stage_start=${SECONDS}
  # Size and CPU speed of the teacher and each student (1 thread, batch 1, the first test set).
  bench_models=()
  [ -f exp/teacher_student/student.pth ] && bench_models+=(--model teacher=exp/teacher_student)
  bench_names=()
  for student in "${students[@]}"; do read -r name _ <<<"${student}"; bench_names+=("${name}"); done
  for name in ${benchmark_students}; do
    [ -f "exp/distill_${name}/student.pth" ] || { log "Error: --benchmark_students: exp/distill_${name}/student.pth is missing"; exit 1; }
    [[ " ${bench_names[*]} " == *" ${name} "* ]] || bench_names+=("${name}")
  done
  for name in "${bench_names[@]}"; do
    [ -f "exp/distill_${name}/student.pth" ] && bench_models+=(--model "${name}=exp/distill_${name}")
  done
  bench_set=${test_sets%% *}
  if [ "${#bench_models[@]}" -gt 0 ]; then
    stamp=(--input "wav=data/${bench_set}/wav.scp" --arg "models=${bench_models[*]}"
           --arg "benchmark_args=${benchmark_args}" --output exp/benchmark/benchmark.json)
    for ((i = 1; i < ${#bench_models[@]}; i += 2)); do
      model_dir=${bench_models[i]#*=}
      stamp+=(--input "${bench_models[i]%%=*}=${model_dir}/student.pth" --input "${bench_models[i]%%=*}_yaml=${model_dir}/student.yaml")
    done
    if needs_run "Stage 9: benchmark" exp/benchmark "${stamp[@]}"; then
      log "Stage 9: benchmark on data/${bench_set} (log: exp/benchmark/benchmark.log)"
      # shellcheck disable=SC2086
      python -m espnet_distill.bin.benchmark --data_dir "data/${bench_set}" --out_dir exp/benchmark \
        --num_threads 1 "${bench_models[@]}" ${benchmark_args} >exp/benchmark/benchmark.log 2>&1 \
        || { log "Error: the benchmark failed; see exp/benchmark/benchmark.log"; exit 1; }
      step_done exp/benchmark
    fi
  fi
  log "Stage 9: RESULTS.md"
  make_results
  cat RESULTS.md
  log "Stage 9 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
  stage_start=${SECONDS}
  distilled_names=()
  for student in "${students[@]}"; do read -r name _ _ <<<"${student}"; distilled_names+=("${name}${exp_suffix}"); done
  deploy_set=${test_sets%% *}
  if best=$(python -m espnet_distill.recipe.best_model --exp_dir exp --finetune_set "${train_set}" --set "${valid_set}" \
              --decode "${decode_name}" "${distilled_names[@]}"); then
    asr_dir=exp/asr_${best}_${train_set}
    stamp=(--input "config=${asr_dir}/config.yaml" --input "wav=data/${deploy_set}/wav.scp" --input "text=data/${deploy_set}/text"
           --input "calibration=data/${train_set}/wav.scp" --arg "best=${best}" --output exp/deploy/benchmark/deploy.json)
    if [ -f "${asr_dir}/valid.cer_ctc.ave.pth" ]; then stamp+=(--input "model=${asr_dir}/valid.cer_ctc.ave.pth"); fi
    if needs_run "Stage 10: deployment of ${best}" exp/deploy "${stamp[@]}"; then
      log "Stage 10: ONNX export of ${best} (fp32, int8), parity on data/${deploy_set} (log: exp/deploy/export.log)"
      mkdir -p exp/deploy
      python -m espnet_distill.bin.export_onnx "${asr_dir}" "exp/deploy/${best}" --data_dir "data/${deploy_set}" \
        --calibration_dir "data/${train_set}" >exp/deploy/export.log 2>&1 || { log "Error: the ONNX export failed; see exp/deploy/export.log"; exit 1; }
      log "Stage 10: PyTorch fp32, ONNX Runtime fp32 and int8 timed (log: exp/deploy/benchmark.log)"
      python -m espnet_distill.bin.benchmark_deploy --data_dir "data/${deploy_set}" --out_dir exp/deploy/benchmark \
        --threads 1 4 --calibration_dir "data/${train_set}" --model "${best}=${asr_dir}" >exp/deploy/benchmark.log 2>&1 \
        || { log "Error: the deployment benchmark failed; see exp/deploy/benchmark.log"; exit 1; }
      step_done exp/deploy
    fi
    cat exp/deploy/benchmark/deploy.md
    log "Stage 10: RESULTS.md (with the deployment tables)"
    make_results
  else
    log "Stage 10: skipped (no distilled student fine-tuned on ${train_set} has been scored on ${valid_set})"
  fi
  log "Stage 10 done in $((SECONDS - stage_start))s"
fi

if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
  stage_start=${SECONDS}
  if [ -z "${superb_tasks}" ]; then
    log "Stage 11: skipped (no --superb_tasks)"
  else
    [[ " ${superb_tasks} " == *" pr "* ]] && superb_phoneme_data
    superb_train
    superb_decode
    log "Stage 11: RESULTS.md (with the SUPERB table)"
    make_results
  fi
  log "Stage 11 done in $((SECONDS - stage_start))s"
fi

log "Successfully finished in ${SECONDS}s"
