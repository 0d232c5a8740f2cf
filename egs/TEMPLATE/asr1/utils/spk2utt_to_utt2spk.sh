#!/usr/bin/env bash
# Usage: utils/spk2utt_to_utt2spk.sh <spk2utt> <utt2spk>
exec python -m espnet_distill.recipe.utt2spk_to_spk2utt --reverse "$@"
