#!/usr/bin/env bash
# Sourced by every recipe script (distill_asr.sh, ssl1/run.sh, local/data.sh, utils/make_fbank.sh, ...):
# the one log format, and the run-or-skip decision of each step that writes an output dir
# (espnet_distill.recipe.stage_stamp): "needs_run <what> <dir> <inputs> || skip; <command>; step_done <dir>".

# log <message>: a timestamped line naming the calling script, line and function.
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# needs_run <what> <out dir> [<stage_stamp begin option> ...]: logs why the step that writes
# <out dir> runs or is skipped; true when it must run (its inputs are then recorded).
needs_run() {
  local what=$1 dir=$2 decision
  shift 2
  decision=$(python -m espnet_distill.recipe.stage_stamp begin "${dir}" "$@") \
    || { log "Error: cannot check ${dir} (espnet_distill.recipe.stage_stamp failed)"; exit 1; }
  log "${what}: ${dir}: ${decision}"
  [ "${decision%%:*}" = run ]
}

# step_done <out dir>: the step that writes <out dir> finished.
step_done() {
  python -m espnet_distill.recipe.stage_stamp finish "$1"
}

# adopt_done_marker <marker> <key> <out dir> [<stage_stamp begin option> ...]: data dirs made before the
# content stamps were marked finished by a file holding their key (local/data.sh's data/.<corpus>.done).
# A marker with this key becomes the finished record of <out dir>, so that nothing is redone; any
# marker is then removed.
adopt_done_marker() {
  local marker=$1 key=$2 dir=$3
  shift 3
  [ -f "${marker}" ] || return 0
  if [ "$(cat "${marker}")" = "${key}" ]; then
    python -m espnet_distill.recipe.stage_stamp begin "${dir}" "$@" >/dev/null
    step_done "${dir}"
  fi
  rm -f "${marker}"
}

# stop_watcher <pid>: a progress watcher (recipe/watch_progress) whose jobs have ended gets up to 5 s to
# print its last line and exit, then is stopped.
stop_watcher() {
  local pid=$1 _
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.5
  done
  kill "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}
