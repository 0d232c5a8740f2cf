#!/usr/bin/env bash
# Thin wrapper of `python -m espnet_distill.recipe.split_scp`; run it with --help for the options.
exec python -m espnet_distill.recipe.split_scp "$@"
