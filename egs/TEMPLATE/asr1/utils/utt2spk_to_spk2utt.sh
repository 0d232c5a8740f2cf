#!/usr/bin/env bash
# Thin wrapper of `python -m espnet_distill.recipe.utt2spk_to_spk2utt`; run it with --help for the options.
exec python -m espnet_distill.recipe.utt2spk_to_spk2utt "$@"
