# shellcheck shell=bash
# Where the corpora of this recipe live.  The mini corpus is synthesized once and shared
# with egs/mini_synth/asr1 (its downloads/mini_synth); each recipe writes its own data dirs.
MINI_SYNTH=${MINI_SYNTH:-../asr1/downloads/mini_synth}
