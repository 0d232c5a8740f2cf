#!/usr/bin/env bash
# The mini recipe: a synthetic English corpus, Kaldi fbank features, and a small
# HuBERT teacher distilled into students for CTC ASR.
# As in the paper, the teacher and the distillation see far more unlabelled
# audio (data/ssl: the 4-hour pool of 80 more voices, plus train) than the
# labelled sets (train, 1 hour; train_10pct, 5.5 minutes), and every model is
# fine-tuned on both labelled sets.
#
# The teacher is the released pretrained/hubert_mini.pt, made by ../ssl1/run.sh
# (two HuBERT iterations on data/ssl; its sha256, in pretrained/hubert_mini.pt.sha256
# beside it, is checked at every load).  Another teacher:
#   ./run.sh --teacher_format fairseq --teacher_path /path/to/hubert_base_ls960.pt
# (checked against <path>.sha256 when that file exists, or --teacher_sha256 when given).
# To pretrain a teacher here instead (stages 3-4, one iteration):
#   ./run.sh --teacher_format ""
# Every option of distill_asr.sh can be given here, e.g.
#   ./run.sh --stop_stage 2 --local_data_opts "--size tiny"
#   ./run.sh --stage 6 --use_lm true             # an LM of the text source (dev and test sentences removed),
#                                                # decoding without and with it (local/run_study.sh --lm)
#   ./run.sh --stage 5 --distill_configs all   # every config of conf/distill/, with the front-ends below
# The default students: the deep-thin student with the teacher's waveform CNN
# (deep_thin_reg_kl) and its swap to an Fbank front-end (deep_thin_reg_kl_fbank,
# distilled in two stages), the same config with each of --distill_frontends.  Two
# training jobs of one thread each run at once: on 2 cores, 1.5x the throughput of
# one at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. utils/setup.sh
# --help prints the options of distill_asr.sh without setting anything up; else the set-up of a fresh
# machine (Debian packages, tools/venv), quick once done.  path.sh only activates.
if asks_for_help "$@"; then ./distill_asr.sh --help; exit; fi
install_tools
. utils/supervise.sh  # stopping run.sh stops the stages and their jobs

run_supervised ./distill_asr.sh \
  --train_set train \
  --ssl_set ssl \
  --extra_sets train_10pct \
  --valid_set dev \
  --test_sets test \
  --fbank_config conf/fbank.yaml \
  --teacher_format torchaudio \
  --teacher_path pretrained/hubert_mini.pt \
  --distill_configs conf/distill/deep_thin_reg_kl.yaml \
  --distill_frontends "wav_cnn fbank" \
  --finetune_sets "train train_10pct" \
  --finetune_configs "train_10pct=conf/finetune/ctc_low.yaml" \
  --train_jobs 2 \
  --lm_train_text data/local/lm/sentences.txt \
  --lm_weights "0.3 0.6 0.9 1.2" \
  --lm_beam_size 8 \
  "$@"
