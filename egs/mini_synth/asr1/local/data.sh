#!/usr/bin/env bash
# Build the mini corpus: English sentences from Debian's fortunes spoken by
# synthetic voices (espeak-ng and flite), split by speaker into the labelled
# data/{train,train_10pct,dev,test} and the unlabelled data/pool (data/ssl: pool
# plus train).  Deterministic for a given seed; a rerun with the same options
# does nothing, and an interrupted run resumes.
set -euo pipefail
. utils/stage_steps.sh

size=default   # corpus size: tiny (tests), small, default (about 1 hour of train audio)
seed=1
nj=4
help_message="Usage: $0 [--size tiny|small|default] [--seed <n>] [--nj <n>]
e.g.: $0 --size tiny"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
. ./path.sh
. ./cmd.sh
. ./db.sh

# Bumped whenever the plan of a size and seed changes, so that no WAV of an older
# plan is taken for an utterance of the new one.
corpus_version=v3
corpus_dir=${MINI_SYNTH}/${corpus_version}/${size}_seed${seed}
log_dir=exp/data_prep/log
# The language model's text (--use_lm true): every normalized sentence of the text source, of which
# the corpus speaks a few; the LM stage removes the dev and test sentences.  Written whatever the size.
if needs_run "the LM's sentences" data/local/lm --arg "source=fortunes" --output data/local/lm/sentences.txt; then
  python -m espnet_distill.recipe.mini_synth sentences --out data/local/lm/sentences.txt
  step_done data/local/lm
fi

# The data dirs are the corpus's: redone when its version, size or seed changed.
stamp=(--arg "corpus=${corpus_dir}" --output data/local/spk2voice)
adopt_done_marker data/.mini_synth.done "${corpus_dir}" data "${stamp[@]}"
needs_run "data dirs of the mini corpus" data "${stamp[@]}" || exit 0

log "planning the corpus in ${corpus_dir}"
python -m espnet_distill.recipe.mini_synth plan --size "${size}" --seed "${seed}" --out_dir "${corpus_dir}"

log "synthesizing with ${nj} jobs (logs: ${log_dir}/synth.*.log)"
python -m espnet_distill.recipe.split_scp --nj "${nj}" "${corpus_dir}/plan" "${corpus_dir}/split${nj}/plan.JOB"
${train_cmd} JOB=1:"${nj}" "${log_dir}/synth.JOB.log" \
  python -m espnet_distill.recipe.mini_synth synth --plan "${corpus_dir}/split${nj}/plan.JOB" \
  --wav_dir "${corpus_dir}/wav"

log "writing data dirs"
python -m espnet_distill.recipe.mini_synth data_dirs --plan "${corpus_dir}/plan" \
  --wav_dir "${corpus_dir}/wav" --data_root data --seed "${seed}"
mkdir -p data/local && cp "${corpus_dir}/spk2voice" data/local/spk2voice
step_done data
log "done"
