# shellcheck shell=bash
# shellcheck disable=SC2154  # the options and variables of distill_asr.sh, which sources this file
# Decoding steps and the language model of shallow fusion (--use_lm true), for distill_asr.sh's stages
# 6 and 8.  Sourced after utils/stage_steps.sh; reads distill_asr.sh's options.  Each step declares what
# it reads and is skipped when none of it changed (needs_run).
#
# decode_step <asr exp dir> <model run> <set> <decode name> <beam size> [<lm dir> <lm weight>]
#   decodes data/<set> into <asr exp dir>/<decode name>/<set> over --nj jobs and scores it (score.json);
#   with an LM, the beam search is fused with it at that weight.
# lm_train_step <lm dir>
#   the LM text in <lm dir>/data/text: the sentences of the --lm_train_text files and the transcripts of
#   --lm_train_sets, without any sentence of the validation, test and decoding sets (checked); its token
#   counts; then ESPnet's LM task (--lm_config) on the recipe's token list: <lm dir>/train.log, its
#   validation perplexity in <lm dir>/perplexity.json.
# lm_decode_model <asr exp dir> <model run> <lm dir>
#   the beam search (--lm_beam_size) of --valid_set without the LM and at each of --lm_weights, the
#   weight of the lowest validation error (recipe/lm_weight: <asr exp dir>/<decode>_lm/lm_weight.json;
#   0 when no weight helps), and the other --decode_sets with and without the LM at that weight.

decode_step() {
  local dir=$1 model_run=$2 dset=$3 name=$4 beam=$5 lm=${6:-} weight=${7:-}
  local out=${dir}/${name}/${dset}
  local stamp=(--arg "model_run=${model_run}" --input "config=${dir}/config.yaml" --input "wav=data/${dset}/wav.scp"
               --input "text=data/${dset}/text" --arg "beam_size=${beam}" --arg "skip_bad_utterances=${skip_bad_utterances}")
  local lm_opts=()
  if [ -n "${lm}" ]; then
    stamp+=(--input "lm=${lm}/valid.loss.ave.pth" --arg "lm_weight=${weight}")
    lm_opts=(--lm "${lm}" --lm_weight "${weight}")
  fi
  needs_run "Stage 8: decoding of ${dset}" "${out}" "${stamp[@]}" --output "${out}/score.json" || return 0
  log "Stage 8: decoding ${dset} with ${dir} (${name})"
  utils/decode.sh --cmd "${decode_cmd}" --nj "${nj}" --beam_size "${beam}" \
    --skip_bad_utterances "${skip_bad_utterances}" "${lm_opts[@]}" "${dir}" "data/${dset}" "${out}"
  step_done "${out}"
}

lm_train_step() {
  local dir=$1
  local sources=() inputs=() excluded=() kaldi=() file dset
  for file in ${lm_train_text}; do
    if [ ! -f "${file}" ]; then
      log "Error: the LM's text --lm_train_text ${file} does not exist (the recipe's README says where to get it)"
      exit 1
    fi
    sources+=("${file}")
    inputs+=(--input "text_${#sources[@]}=${file}")
  done
  for dset in ${lm_train_sets}; do kaldi+=("data/${dset}/text"); inputs+=(--input "transcripts_${dset}=data/${dset}/text"); done
  if [ "${#sources[@]}" -eq 0 ] && [ "${#kaldi[@]}" -eq 0 ]; then
    log "Error: --use_lm true needs the LM's text: --lm_train_text <files> and/or --lm_train_sets <sets>"
    exit 1
  fi
  for dset in ${valid_set} ${test_sets} ${decode_sets}; do
    [[ " ${excluded[*]} " == *" data/${dset}/text "* ]] || excluded+=("data/${dset}/text")
  done
  for file in "${excluded[@]}"; do inputs+=(--input "excluded_${file}=${file}"); done
  needs_run "Stage 6: language model" "${dir}" --clear true --input "config=${lm_config}" \
    --input "tokens=${token_dir}/tokens.txt" "${inputs[@]}" --arg "lm_args=${lm_args}" --arg "ngpu=${ngpu}" \
    --output "${dir}/perplexity.json" || return 0
  log "Stage 6: the LM's text (${sources[*]} ${kaldi[*]}, without the sentences of ${excluded[*]})"
  mkdir -p "${dir}/data"
  python -m espnet_distill.recipe.lm_data text --text "${sources[@]}" --kaldi_text "${kaldi[@]}" \
    --exclude "${excluded[@]}" --out "${dir}/data/text"
  python -m espnet_distill.recipe.lm_data shape --token_list "${token_dir}/tokens.txt" --token_type "${token_type}" \
    "${bpe_opts[@]}" "${dir}/data/text" "${dir}/data/train_shape"
  python -m espnet_distill.recipe.lm_data shape --token_list "${token_dir}/tokens.txt" --token_type "${token_type}" \
    "${bpe_opts[@]}" "data/${valid_set}/text" "${dir}/data/valid_shape"
  log "Stage 6: training the LM of ${lm_config} in ${dir} (log: ${dir}/train.log)"
  # One job with every core (the job runner keeps an earlier attempt's log as train.log.1, ...).
  # shellcheck disable=SC2086  # cmd.sh's cuda_cmd may carry runner options; --lm_args holds options
  train_job "${dir}" ${cuda_cmd} --gpu "${ngpu}" "${dir}/train.log" python -m espnet_distill.bin.lm_train \
    --config "${lm_config}" --token_list "${token_dir}/tokens.txt" --token_type "${token_type}" "${bpe_opts[@]}" \
    --ngpu "${ngpu}" --train_data_path_and_name_and_type "${dir}/data/text,text,text" \
    --train_shape_file "${dir}/data/train_shape" --valid_data_path_and_name_and_type "data/${valid_set}/text,text,text" \
    --valid_shape_file "${dir}/data/valid_shape" --resume true --output_dir "${dir}" ${lm_args}
  run_train_jobs "Stage 6"
  log "Stage 6: the LM's perplexity on data/${valid_set}/text:" \
    "$(python -m espnet_distill.recipe.query "${dir}/perplexity.json" perplexity)"
  step_done "${dir}"
}

lm_decode_model() {
  local dir=$1 model_run=$2 lm=$3
  local name=decode_ctc_beam${lm_beam_size} weight dset best
  decode_step "${dir}" "${model_run}" "${valid_set}" "${name}" "${lm_beam_size}"
  for weight in ${lm_weights}; do
    weight=$(python -m espnet_distill.recipe.lm_weight --name "${weight}")
    decode_step "${dir}" "${model_run}" "${valid_set}" "${name}_lm${weight}" "${lm_beam_size}" "${lm}" "${weight}"
  done
  # shellcheck disable=SC2086
  best=$(python -m espnet_distill.recipe.lm_weight --asr_exp "${dir}" --decode "${name}" --valid_set "${valid_set}" \
    --weights ${lm_weights} --metric "${lm_tune_metric}" --lm "${lm}")
  log "Stage 8: ${dir}: LM weight ${best} (the lowest ${lm_tune_metric} on ${valid_set} of 0 ${lm_weights})"
  for dset in ${decode_sets}; do
    [ "${dset}" != "${valid_set}" ] || continue
    decode_step "${dir}" "${model_run}" "${dset}" "${name}" "${lm_beam_size}"
    [ "${best}" = 0.0 ] || decode_step "${dir}" "${model_run}" "${dset}" "${name}_lm${best}" "${lm_beam_size}" "${lm}" "${best}"
  done
}
