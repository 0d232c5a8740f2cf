#!/usr/bin/env bash
# The study: the paper's comparisons on the mini corpus, resumable.
#
# The grid: students {shallow_wide, deep_thin} x losses {reg, reg_kl} (the four configs
# of conf/distill/) x front-ends {wav_cnn, fbank} (--distill_frontends: the Fbank
# students are named <config>_fbank), plus the teacher and each
# structure from scratch (one per structure: the reg and reg_kl students share it,
# named after the reg_kl config as in the default run), each fine-tuned on the full
# labelled set (train) and on the low-resource subset (train_10pct, with
# conf/finetune/ctc_low.yaml), decoded and scored.  The default run's experiments
# are part of the grid: after ./run.sh, this script trains only the rest.
#
# Then each of --seeds repeats the key comparisons (distillation and fine-tuning
# with that seed into exp dirs suffixed _seed<N>), on train and train_10pct:
#   --repeat, --repeat_fbank: the default run's students (deep_thin_reg_kl and its
#             Fbank swap deep_thin_reg_kl_fbank) and deep_thin_reg, each distilled and
#             its structure from scratch: the front-ends, the discriminative loss, and
#             distillation against scratch.
# --prune: the pruned students (DPHuBERT, docs/pruning.md; each config's start, its pruning run, is distilled
#           first), each with its own front-end, distilled and fine-tuned with seed 1 after the grid and with
#           each of --seeds, against the deep-thin student of the same size and its structure from scratch.
# Then the SUPERB-style evaluation of frozen upstreams (stage 11, docs/superb.md): log-mel features,
# the teacher, the default run's two students and their structures untrained, each frozen under the
# ASR and the phoneme-recognition downstream, once per seed of --superb_seeds; then the low-resource
# comparison (--superb_low_tasks on train_10pct, exp/superb_<task>_<upstream>_seed<N>_train_10pct): the
# students distilled with and without the KL loss (--superb_low_configs) and log-mel.
# --lm: the language model of shallow fusion (stage 6 with --use_lm true: the text source's sentences without
#       the dev and test ones), then the default run's models (the teacher, its two students and their
#       structures from scratch, on train and train_10pct) decoded by beam search without and with it, the
#       LM weight chosen on dev (docs/language_model.md).
# RESULTS.md and plots/ are regenerated from exp/ after the grid and at the end;
# rerunning skips finished work.
#
#   local/run_study.sh                                 # the grid, then seeds 2 and 3
#   local/run_study.sh --seed_jobs 2                   # the seeds side by side (1 thread each)
#   local/run_study.sh --size small                    # a third of the audio (the step budgets stay)
#   local/run_study.sh --seeds "" --run_args "--nj 2"  # the grid only, with an option of run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. utils/stage_steps.sh

size=default
seeds="2 3"
seed_jobs=1
# The repeats: --repeat with their own front-ends (wav_cnn), then --repeat_fbank with the Fbank front-end.
repeat="conf/distill/deep_thin_reg_kl.yaml conf/distill/deep_thin_reg.yaml"
repeat_fbank="conf/distill/deep_thin_reg_kl.yaml"
prune="conf/distill/pruned_deep_thin_reg.yaml"
# reg_kl first: the from-scratch models are named after the first student of each structure.
grid="deep_thin_reg_kl deep_thin_reg shallow_wide_reg_kl shallow_wide_reg"
grid_frontends="wav_cnn fbank"
superb_tasks="asr pr"
superb_upstreams="fbank teacher distilled scratch"
superb_seeds="1 2 3"
superb_low_tasks="pr"
superb_low_configs="deep_thin_reg_kl deep_thin_reg"
superb_low_upstreams="fbank distilled"
lm=true
teacher_targets=false
run_args=""
help_message="Usage: $0 [options]
Options:
  --size <default|small|tiny>  the corpus size (default: ${size})
  --seeds <\"N ...\">            the repeats of the key comparisons (default: \"${seeds}\"; \"\": none)
  --seed_jobs <n>              repeats side by side (default: ${seed_jobs})
  --repeat <\"config ...\">      the distillation configs repeated with each seed, each with its own front-end
                               (default: \"${repeat}\")
  --repeat_fbank <\"config ...\"> the configs also repeated with the Fbank front-end (<name>_fbank)
                               (default: \"${repeat_fbank}\")
  --prune <\"config ...\">       the pruned students, each seed (default: \"${prune}\"; \"\": none)
  --grid <\"name ...\">          the configs of the grid, conf/distill/<name>.yaml (default: all four)
  --grid_frontends <\"f ...\">   the front-ends of each grid config (default: \"${grid_frontends}\")
  --superb_tasks <\"t ...\">     stage 11's tasks, of asr and pr (default: \"${superb_tasks}\"; \"\": none)
  --superb_upstreams <\"u ...\"> stage 11's upstreams (default: \"${superb_upstreams}\")
  --superb_seeds <\"N ...\">     the seeds of stage 11's downstreams (default: \"${superb_seeds}\")
  --superb_low_tasks <\"t ...\"> stage 11's tasks trained on train_10pct (default: \"${superb_low_tasks}\"; \"\": none)
  --superb_low_configs <\"name ...\"> their students, with and without the KL loss (default: \"${superb_low_configs}\")
  --superb_low_upstreams <\"u ...\"> their upstreams (default: \"${superb_low_upstreams}\")
  --lm <true|false>            the LM and the default run's models decoded without and with it (default: ${lm})
  --teacher_targets <true|false>  run the teacher once: one dump of stored targets serves every student
                               of the study, each distilled from it (docs/teacher_targets.md) (default: ${teacher_targets})
  --run_args <\"options\">       options for every run.sh call, e.g. \"--nj 2\" (default: \"${run_args}\")"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
# run_args is a list of options, split as the shell splits a command line (quotes group words:
# --run_args "--distill_args '--max_epoch 1'"); a quoting mistake is an error here, not in run.sh.
run_opts=()
if ! eval "run_opts=(${run_args})" 2>/dev/null; then
  echo "$0: option --run_args: cannot split '${run_args}' into options (unbalanced quotes?)" >&2
  exit 2
fi
grid_configs=""
for name in ${grid}; do grid_configs+="conf/distill/${name}.yaml "; done

study_opts=(--local_data_opts "--size ${size}" --finetune_configs "train_10pct=conf/finetune/ctc_low.yaml"
            --finetune_sets "train train_10pct")
if [ "${teacher_targets}" = true ]; then
  # One dump for every student of the study: each run.sh call names all of them, so its stamp is the same.
  all_students=""
  for conf in ${grid_configs}; do
    for frontend in ${grid_frontends}; do all_students+="${conf}:${frontend} "; done
  done
  for conf in ${repeat}; do all_students+="${conf} "; done
  for conf in ${repeat_fbank}; do all_students+="${conf}:fbank "; done
  for conf in ${prune}; do
    start_conf=$(python -m espnet_distill.recipe.query --default "" "${conf}" init_student)
    [ -z "${start_conf}" ] || all_students+="conf/distill/${start_conf#exp/distill_}.yaml "
    all_students+="${conf} "
  done
  # shellcheck disable=SC2086  # one student a word
  all_students=$(printf '%s\n' ${all_students} | awk '!seen[$0]++' | tr '\n' ' ')
  study_opts+=(--teacher_targets true --teacher_targets_students "${all_students}")
elif [ "${teacher_targets}" != false ]; then
  echo "$0: option --teacher_targets takes true or false, not '${teacher_targets}'" >&2
  exit 2
fi
start=${SECONDS}
grid_opts=(--distill_configs "${grid_configs}" --distill_frontends "${grid_frontends}")
log "The grid: ${grid_configs}with the front-ends ${grid_frontends}, the teacher and the structures from scratch"
./run.sh "${study_opts[@]}" "${grid_opts[@]}" "${run_opts[@]}"
log "The grid done in $((SECONDS - start))s"
# The pruned students (seed 1): stages 5-8 with their own front-ends, the distilled students only (their
# from-scratch reference of equal size is the grid's deep-thin structure).
prune_opts=(--stage 5 --stop_stage 8 --distill_configs "${prune}" --distill_frontends "" --finetune_models distilled)
prune_names=""
for conf in ${prune}; do prune_names+="$(basename "${conf}" .yaml) "; done
if [ -n "${prune}" ]; then
  start=${SECONDS}
  log "The pruned students: ${prune}"
  ./run.sh "${study_opts[@]}" "${prune_opts[@]}" "${run_opts[@]}"
  log "The pruned students done in $((SECONDS - start))s"
fi

repeat_seed() {  # <seed> [<run.sh option> ...]
  local seed=$1
  shift
  # Stages 5-8; the report (stage 9) comes once at the end, over the grid's benchmark.  Two runs: the
  # students of --repeat, then the Fbank ones of --repeat_fbank (each run fine-tunes one model from
  # scratch per structure among its own students).
  local seed_opts=("${study_opts[@]}" --stage 5 --stop_stage 8 --seed "${seed}" --finetune_models "distilled scratch")
  if [ -n "${repeat}" ]; then
    ./run.sh "${seed_opts[@]}" --distill_configs "${repeat}" --distill_frontends "" "${run_opts[@]}" "$@"
  fi
  if [ -n "${repeat_fbank}" ]; then
    ./run.sh "${seed_opts[@]}" --distill_configs "${repeat_fbank}" --distill_frontends fbank "${run_opts[@]}" "$@"
  fi
  if [ -n "${prune}" ]; then
    ./run.sh "${study_opts[@]}" "${prune_opts[@]}" --seed "${seed}" "${run_opts[@]}" "$@"
  fi
}
start=${SECONDS}
if [ "${seed_jobs}" -le 1 ]; then
  for seed in ${seeds}; do
    log "Seed ${seed}"
    repeat_seed "${seed}"
  done
else
  # Seeds side by side, one training job each (threads shared out), logs in exp/study_seed<N>.log.
  threads=$(( $(nproc) / seed_jobs ))
  [ "${threads}" -ge 1 ] || threads=1
  failed=()
  pids=()
  for seed in ${seeds}; do
    while [ "$(jobs -rp | wc -l)" -ge "${seed_jobs}" ]; do wait -n || true; done
    log "Seed ${seed} (log: exp/study_seed${seed}.log)"
    repeat_seed "${seed}" --train_jobs 1 --train_threads "${threads}" >"exp/study_seed${seed}.log" 2>&1 &
    pids+=("$!:${seed}")
  done
  for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || failed+=("${entry#*:}")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    log "Error: seed(s) ${failed[*]} failed; see exp/study_seed<N>.log"
    exit 1
  fi
fi
[ -z "${seeds}" ] || log "Seeds ${seeds} done in $((SECONDS - start))s"
if [ -n "${superb_tasks}" ]; then
  start=${SECONDS}
  log "SUPERB-style evaluation: ${superb_tasks} of ${superb_upstreams}, seeds ${superb_seeds}"
  ./run.sh "${study_opts[@]}" --stage 11 --distill_configs conf/distill/deep_thin_reg_kl.yaml \
    --distill_frontends "wav_cnn fbank" --superb_tasks "${superb_tasks}" --superb_upstreams "${superb_upstreams}" \
    --superb_seeds "${superb_seeds}" "${run_opts[@]}"
  log "SUPERB-style evaluation done in $((SECONDS - start))s"
fi
if [ -n "${superb_low_tasks}" ]; then
  start=${SECONDS}
  log "SUPERB-style evaluation on train_10pct: ${superb_low_tasks}, seeds ${superb_seeds}"
  low_configs=""
  for name in ${superb_low_configs}; do low_configs+="conf/distill/${name}.yaml "; done
  ./run.sh "${study_opts[@]}" --stage 11 --distill_configs "${low_configs}" --distill_frontends "" \
    --superb_tasks "${superb_low_tasks}" --superb_upstreams "${superb_low_upstreams}" \
    --superb_seeds "${superb_seeds}" --superb_train_set train_10pct "${run_opts[@]}"
  log "SUPERB-style evaluation on train_10pct done in $((SECONDS - start))s"
fi
if ${lm}; then
  start=${SECONDS}
  log "The language model and the decodings without and with it"
  ./run.sh "${study_opts[@]}" --stage 6 --stop_stage 8 --use_lm true --distill_configs conf/distill/deep_thin_reg_kl.yaml \
    --distill_frontends "wav_cnn fbank" "${run_opts[@]}"
  log "The language model and its decodings done in $((SECONDS - start))s"
fi
# The report over everything: the grid, its benchmark, the repeats and stage 11.
./run.sh "${study_opts[@]}" --stage 9 --stop_stage 10 "${grid_opts[@]}" --benchmark_students "${prune_names}" "${run_opts[@]}"
log "Done: RESULTS.md and plots/"
