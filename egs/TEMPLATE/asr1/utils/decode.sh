#!/usr/bin/env bash
# Decode a data dir with a fine-tuned CTC model over nj jobs, then score it with sclite.
# Writes <decode-dir>/text, <decode-dir>/score_{wer,cer}/{ref.trn,hyp.trn,result.txt} and
# <decode-dir>/score.json (the sclite summaries and the real-time factor).
set -euo pipefail

nj=4
cmd=utils/jobs/local.sh
beam_size=1
batch_size=8
skip_bad_utterances=false
lm=""
lm_weight=0.0
help_message="Usage: $0 [options] <asr-exp> <data-dir> <decode-dir>
e.g.: $0 --nj 4 --beam_size 10 exp/asr_teacher_train data/test exp/asr_teacher_train/decode_ctc_beam10/test
Options:
  --nj <n>                     parallel jobs (default: ${nj})
  --cmd <runner>               job runner (default: ${cmd})
  --beam_size <n>              1: greedy CTC; more: CTC prefix beam search (default: ${beam_size})
  --batch_size <n>             utterances encoded together (default: ${batch_size})
  --skip_bad_utterances <b>    decode the rest when an utterance is unreadable (default: ${skip_bad_utterances})
  --lm <dir>                   an lm_train exp dir: shallow fusion in the beam search (default: none)
  --lm_weight <w>              the LM's weight (default: ${lm_weight})"
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
if [ $# -ne 3 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
asr_exp=$1
data=$2
decode_dir=$3

num_utts=$(wc -l <"${data}/wav.scp")
[ "${nj}" -le "${num_utts}" ] || nj=${num_utts}
logdir=${decode_dir}/logdir
rm -rf "${logdir}" "${decode_dir}/text"
mkdir -p "${logdir}"
python -m espnet_distill.recipe.split_scp --nj "${nj}" "${data}/wav.scp" "${logdir}/wav.JOB.scp"

lm_opts=()
[ -z "${lm}" ] || lm_opts=(--lm "${lm}" --lm_weight "${lm_weight}")
${cmd} --num_threads 1 JOB=1:"${nj}" "${logdir}/asr_inference.JOB.log" \
  python -m espnet_distill.bin.asr_inference --asr_exp "${asr_exp}" --wav_scp "${logdir}/wav.JOB.scp" \
  --beam_size "${beam_size}" --batch_size "${batch_size}" --skip_bad_utterances "${skip_bad_utterances}" \
  "${lm_opts[@]}" --output_dir "${logdir}/output.JOB"

python -m espnet_distill.recipe.score --data_dir "${data}" --decode_dir "${decode_dir}" --nj "${nj}"
