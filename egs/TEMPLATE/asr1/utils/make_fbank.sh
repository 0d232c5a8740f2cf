#!/usr/bin/env bash
# Compute Kaldi-compatible fbank features of a data dir, split over --nj jobs.
# Writes <feats-dir>/raw_fbank.JOB.{ark,scp} and, in the data dir, feats.scp,
# utt2num_frames and the global CMVN statistics (feats_stats.npz, cmvn.ark);
# then validates the data dir, loading every matrix.  Safe to rerun: a finished
# data dir is skipped unless its wav.scp or the fbank config changed (by content).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/stage_steps.sh"

nj=4
cmd=utils/jobs/local.sh
fbank_config=conf/fbank.yaml
feat_dim=80
help_message="Usage: $0 [options] <data-dir> <log-dir> <feats-dir>
e.g.: $0 --nj 4 data/train exp/make_fbank/train fbank/train
Options:
  --nj <n>               number of parallel jobs (default: ${nj})
  --cmd <runner>         job runner (default: ${cmd})
  --fbank_config <yaml>  options of compute_fbank (default: ${fbank_config})
  --feat_dim <n>         expected feature dimension (default: ${feat_dim})"
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
if [ $# -ne 3 ]; then
  printf '%s\n' "${help_message}" >&2
  exit 2
fi
data=$1
log_dir=$2
# feats.scp names the arks by absolute path, so the data dir works from anywhere.
feats_dir=$(realpath -m "$3")
# Skipped when a finished run had the same wav.scp and config (by content) and its outputs are there.
[ -d "${feats_dir}" ] && new_feats_dir=false || new_feats_dir=true
needs_run "fbank features of ${data}" "${feats_dir}" --input "wav=${data}/wav.scp" --input "config=${fbank_config}" \
  --arg "feat_dim=${feat_dim}" --output "${data}/feats.scp" --output "${data}/utt2num_frames" \
  --output "${data}/feats_stats.npz" --output "${data}/cmvn.ark" || exit 0
# Bad input stops here, before any feature is written (and leaves no feature dir behind).
if ! python -m espnet_distill.recipe.validate_data_dir --check_audio true "${data}"; then
  if ${new_feats_dir}; then rm -rf "${feats_dir}"; fi
  exit 1
fi
rm -f "${data}/feats.scp" "${data}/utt2num_frames" "${data}/feats_stats.npz" "${data}/cmvn.ark"

num_utts=$(wc -l <"${data}/wav.scp")
[ "${nj}" -le "${num_utts}" ] || nj=${num_utts}
split_dir=${feats_dir}/split${nj}
mkdir -p "${split_dir}" "${log_dir}"
python -m espnet_distill.recipe.split_scp --nj "${nj}" "${data}/wav.scp" "${split_dir}/wav.JOB.scp"

# ${cmd} is unquoted on purpose: it may carry runner options, e.g. "utils/jobs/slurm.sh --mem 4G".
${cmd} JOB=1:"${nj}" "${log_dir}/make_fbank.JOB.log" \
  python -m espnet_distill.bin.compute_fbank --config "${fbank_config}" \
  --wav_scp "${split_dir}/wav.JOB.scp" --out_prefix "${feats_dir}/raw_fbank.JOB"

python -m espnet_distill.recipe.merge_feats --data_dir "${data}" --prefix "${feats_dir}/raw_fbank" --nj "${nj}"
python -m espnet_distill.recipe.validate_data_dir --need_feats true --feat_dim "${feat_dim}" "${data}"
step_done "${feats_dir}"
log "${data}: features of ${num_utts} utterances in ${feats_dir}"
