#!/usr/bin/env bash
# Thin wrapper of `python -m espnet_distill.recipe.validate_data_dir`; run it with --help for the options.
exec python -m espnet_distill.recipe.validate_data_dir "$@"
