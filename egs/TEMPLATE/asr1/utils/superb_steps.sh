# shellcheck shell=bash
# shellcheck disable=SC2154  # the options and variables of distill_asr.sh, which sources this file
# Stage 11 of distill_asr.sh: SUPERB-style evaluation of frozen upstreams.  Sourced after
# utils/stage_steps.sh and utils/train_jobs.sh; reads distill_asr.sh's options and its students list.
#
# Each upstream of --superb_upstreams is frozen; a learnt weighted sum of its hidden layers feeds a small
# downstream (conf/superb/<task>.yaml: ESPnet's RNN or linear encoder, CTC) trained on --superb_train_set
# (default: --train_set), once per seed
# of --superb_seeds, then decoded (greedy CTC) on --valid_set and --test_sets and scored with sclite:
#   exp/superb_<task>_<upstream>_seed<n>[_<train set>]/ (config.yaml, layer_weights.json,
#   decode_ctc_greedy/<set>/score.json; the suffix when --superb_train_set is not --train_set)
# Tasks: asr (the recipe's token list: characters or bpe) and pr (phones: data/<set>_phn, written here
# from espeak-ng's transcripts, or with --superb_lexicon a pronunciation lexicon's, and the token list
# data/token_list/phn).  Upstreams: fbank (the Kaldi
# fbank with the CMVN of --cmvn_set), teacher (<teacher_dir>/teacher.yaml), distilled (each student of
# stage 5), scratch (each student structure with random weights, the floor).

# superb_upstream_entries: one "<name> <frontend_conf key=value> ..." line per upstream.
superb_upstream_entries() {
  local kind student name dirs=()
  for student in "${students[@]}"; do
    read -r name _ _ <<<"${student}"
    dirs+=("exp/distill_${name}${exp_suffix}")
  done
  for kind in ${superb_upstreams}; do
    case "${kind}" in
      fbank) echo "fbank upstream=fbank stats_file=data/${cmvn_set}/feats_stats.npz" ;;
      teacher) echo "teacher upstream=${teacher_dir}/teacher.yaml" ;;
      distilled) for name in "${dirs[@]}"; do echo "${name#exp/distill_} upstream=${name}"; done ;;
      scratch)
        for name in $(python -m espnet_distill.recipe.scratch_models "${dirs[@]}"); do
          echo "random_${name#exp/distill_} upstream=${name} random_init=true"
        done ;;
    esac
  done
}

# superb_upstream_inputs <frontend_conf key=value> ...: the stamp inputs of an upstream.
superb_upstream_inputs() {
  local entry
  for entry in "$@"; do
    case "${entry}" in
      upstream=fbank) ;;
      upstream=*.yaml) echo "--input upstream=${entry#upstream=} --input upstream_checkpoint=${teacher_ckpt}" ;;
      upstream=*) echo "--input upstream=${entry#upstream=}/student.pth --input upstream_yaml=${entry#upstream=}/student.yaml" ;;
      stats_file=*) echo "--input stats=${entry#stats_file=}" ;;
    esac
  done
}

# superb_dir <task> <upstream> <seed>: the exp dir of a downstream.
superb_dir() {
  local suffix=""
  [ "${superb_train_set}" = "${train_set}" ] || suffix=_${superb_train_set}
  echo "exp/superb_$1_$2_seed$3${suffix}"
}

# superb_data <task> <set>: the data dir of a set for a task (pr: its phoneme copy).
superb_data() {
  if [ "$1" = pr ]; then echo "data/$2_phn"; else echo "data/$2"; fi
}

superb_phoneme_data() {  # the phoneme copies of the labelled sets and their token list
  local dset source=(--arg "espeak=$(espeak-ng --version)") lexicon_opts=()
  if [ -n "${superb_lexicon}" ]; then
    if [ ! -f "${superb_lexicon}" ]; then
      log "Error: --superb_lexicon ${superb_lexicon} does not exist (LibriSpeech's: librispeech-lexicon.txt of" \
        "https://www.openslr.org/11; put it there, or give no --superb_lexicon to use espeak-ng's phonemes)"
      exit 1
    fi
    source=(--input "lexicon=${superb_lexicon}")
    lexicon_opts=(--lexicon "${superb_lexicon}")
  fi
  # The recipe's training set too: its phones are the phone list, whichever set trains the downstreams.
  # shellcheck disable=SC2086  # test_sets is a list
  for dset in $(printf '%s\n' ${train_set} ${superb_train_set} ${valid_set} ${test_sets} | awk '!seen[$0]++'); do
    if needs_run "Stage 11: phonemes of ${dset}" "data/${dset}_phn" --input "text=data/${dset}/text" \
        --input "wav=data/${dset}/wav.scp" "${source[@]}" --output "data/${dset}_phn/text"; then
      python -m espnet_distill.recipe.phoneme_data "${lexicon_opts[@]}" "data/${dset}" "data/${dset}_phn"
      step_done "data/${dset}_phn"
    fi
  done
  if needs_run "Stage 11: phone list" data/token_list/phn --input "text=data/${train_set}_phn/text" \
      --output data/token_list/phn/tokens.txt; then
    python -m espnet_distill.recipe.make_tokens --token_type word --text "data/${train_set}_phn/text" \
      --out_dir data/token_list/phn
    step_done data/token_list/phn
  fi
}

superb_train_one() {  # <task> <exp dir> <seed> <frontend_conf key=value> ...
  local task=$1 dir=$2 run_seed=$3 entry conf_opts=() tokens=(--token_list "${token_dir}/tokens.txt"
    --token_type "${token_type}" "${bpe_opts[@]}")
  shift 3
  for entry in "$@"; do conf_opts+=(--frontend_conf "${entry}"); done
  [ "${task}" = pr ] && tokens=(--token_list data/token_list/phn/tokens.txt --token_type word)
  local train valid
  train=$(superb_data "${task}" "${superb_train_set}")
  valid=$(superb_data "${task}" "${valid_set}")
  # shellcheck disable=SC2086
  ${cuda_cmd} "${train_job_opts[@]}" --gpu "${ngpu}" "${dir}/train.log" \
    python -m espnet_distill.bin.asr_train --config "conf/superb/${task}.yaml" "${conf_opts[@]}" "${tokens[@]}" \
    --train_data_path_and_name_and_type "${train}/wav.scp,speech,sound" \
    --train_data_path_and_name_and_type "${train}/text,text,text" \
    --train_shape_file "${distill_stats_dir}/${superb_train_set}/speech_shape" \
    --valid_data_path_and_name_and_type "${valid}/wav.scp,speech,sound" \
    --valid_data_path_and_name_and_type "${valid}/text,text,text" \
    --valid_shape_file "${distill_stats_dir}/${valid_set}/speech_shape" \
    --ngpu "${ngpu}" --resume true --output_dir "${dir}" --seed "${run_seed}" ${superb_args} || return 1
  python -m espnet_distill.recipe.layer_weights "${dir}" && step_done "${dir}"
}

superb_train() {  # queue every task x upstream x seed whose inputs changed, then run them
  local task entry name conf_entries run_seed dir tokens_input
  speech_shape_of "${superb_train_set}"
  speech_shape_of "${valid_set}"
  for task in ${superb_tasks}; do
    tokens_input=${token_dir}/tokens.txt
    [ "${task}" = pr ] && tokens_input=data/token_list/phn/tokens.txt
    while read -r name conf_entries; do
      for run_seed in ${superb_seeds}; do
        dir=$(superb_dir "${task}" "${name}" "${run_seed}")
        # shellcheck disable=SC2046,SC2086  # one stamp option per word
        needs_run "Stage 11: ${task} downstream of ${name} (seed ${run_seed})" "${dir}" --clear true \
          --input "config=conf/superb/${task}.yaml" --input "tokens=${tokens_input}" \
          --input "train_text=$(superb_data "${task}" "${superb_train_set}")/text" --input "train_wav=data/${superb_train_set}/wav.scp" \
          --input "valid_text=$(superb_data "${task}" "${valid_set}")/text" --input "valid_wav=data/${valid_set}/wav.scp" \
          $(superb_upstream_inputs ${conf_entries}) --arg "upstream=${conf_entries}" --arg "seed=${run_seed}" \
          --arg "superb_args=${superb_args}" --output "${dir}/layer_weights.json" || continue
        log "Stage 11: training the ${task} downstream of ${name}, seed ${run_seed} (log: ${dir}/train.log)"
        mkdir -p "${dir}"
        # shellcheck disable=SC2086
        train_job "${dir}" superb_train_one "${task}" "${dir}" "${run_seed}" ${conf_entries}
      done
    done < <(superb_upstream_entries)
  done
  run_train_jobs "Stage 11"
}

superb_decode() {  # greedy CTC decoding and sclite scoring of the valid and test sets
  local task name run_seed dir dset out model_run
  for task in ${superb_tasks}; do
    while read -r name _; do
      for run_seed in ${superb_seeds}; do
        dir=$(superb_dir "${task}" "${name}" "${run_seed}")
        model_run=$(python -m espnet_distill.recipe.stage_stamp run_id "${dir}")
        for dset in ${valid_set} ${test_sets}; do
          out=${dir}/decode_ctc_greedy/${dset}
          needs_run "Stage 11: decoding of ${dset}" "${out}" --arg "model_run=${model_run}" \
            --input "config=${dir}/config.yaml" --input "wav=data/${dset}/wav.scp" \
            --input "text=$(superb_data "${task}" "${dset}")/text" --output "${out}/score.json" || continue
          log "Stage 11: decoding ${dset} with ${dir}"
          utils/decode.sh --cmd "${decode_cmd}" --nj "${nj}" "${dir}" "$(superb_data "${task}" "${dset}")" "${out}"
          step_done "${out}"
        done
      done
    done < <(superb_upstream_entries)
  done
}
