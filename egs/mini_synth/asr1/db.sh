# shellcheck shell=bash
# Where the corpora of this recipe live.  The mini corpus is synthesized here.
MINI_SYNTH=${MINI_SYNTH:-downloads/mini_synth}
