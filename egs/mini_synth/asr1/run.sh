#!/usr/bin/env bash
# The mini recipe: a synthetic English corpus, Kaldi fbank features, and (in
# later stages) a small HuBERT teacher distilled into students for CTC ASR.
# Every option of distill_asr.sh can be given here, e.g.
#   ./run.sh --stop_stage 2 --local_data_opts "--size tiny"
#   ./run.sh --stage 5 --distill_configs all   # the four students of conf/distill/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

./distill_asr.sh \
  --train_set train \
  --extra_sets train_10pct \
  --valid_set dev \
  --test_sets test \
  --fbank_config conf/fbank.yaml \
  --distill_configs conf/distill/deep_thin_reg_kl.yaml \
  "$@"
