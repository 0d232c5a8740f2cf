#!/usr/bin/env bash
# The paper's recipe: HuBERT Base (fairseq's hubert_base_ls960.pt) distilled on
# LibriSpeech 960 h without labels into the deep-thin student and its Fbank swap,
# then CTC fine-tuning on train-clean-100 and Libri-Light's 10 h and 1 h, and
# decoding of dev/test clean/other.  Corpora and the teacher: db.sh (nothing is
# downloaded).  Every option of distill_asr.sh can be given here, e.g.
#   ./run.sh --stop_stage 2                      # data dirs and features only
#   ./run.sh --distill_configs all               # the four configs of conf/distill/, each with both front-ends
#   ./run.sh --ngpu 4 --teacher_format huggingface --teacher_path downloads/hubert-base-ls960
#   ./run.sh --stage 11 --superb_tasks "asr pr"  # SUPERB's ASR and PR of frozen upstreams (PR: the lexicon below)
#   ./run.sh --use_lm false                      # decode without the Transformer LM (stage 6 needs its corpus)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. utils/setup.sh
# --help prints the options of distill_asr.sh without setting anything up; else the set-up of a fresh
# machine (Debian packages, tools/venv), quick once done.  path.sh only activates.
if asks_for_help "$@"; then ./distill_asr.sh --help; exit; fi
install_tools
. ./db.sh
. utils/supervise.sh  # stopping run.sh stops the stages and their jobs

run_supervised ./distill_asr.sh \
  --train_set train_960 \
  --valid_set dev_clean \
  --test_sets "test_clean test_other" \
  --extra_sets "dev_other train_clean_100 train_10h train_1h" \
  --feats_sets "train_clean_100 dev_clean" \
  --cmvn_set train_clean_100 \
  --teacher_format fairseq \
  --teacher_path "${HUBERT_BASE}" \
  --distill_configs conf/distill/deep_thin_reg_kl.yaml \
  --distill_frontends "wav_cnn fbank" \
  --finetune_sets "train_clean_100 train_10h train_1h" \
  --finetune_configs "train_clean_100=conf/finetune/ctc_100h.yaml train_10h=conf/finetune/ctc_10h.yaml train_1h=conf/finetune/ctc_1h.yaml" \
  --finetune_config conf/finetune/ctc_100h.yaml \
  --decode_sets "dev_clean dev_other test_clean test_other" \
  --benchmark_args "--max_utts 300 --repeats 1" \
  --use_lm true \
  --lm_config conf/lm/transformer.yaml \
  --lm_train_text "${LIBRISPEECH_LM}" \
  --lm_train_sets train_960 \
  --lm_weights "0.3 0.5 0.7 1.0" \
  --lm_tune_metric wer \
  --superb_train_set train_clean_100 \
  --superb_lexicon downloads/librispeech-lexicon.txt \
  --ngpu 1 \
  --nj 32 \
  "$@"
