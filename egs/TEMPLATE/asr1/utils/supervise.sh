#!/usr/bin/env bash
# Sourced by a recipe's run.sh: run_supervised <command> [<arg> ...] runs the command as a child and
# waits for it; when run.sh is stopped (kill, Ctrl-C, a closed terminal), the command and every
# process it started (training jobs, feature jobs, progress watchers) are stopped too, instead of
# running on without their parent.  The exit status is the command's (143 after SIGTERM, 130 after
# Ctrl-C, 129 after SIGHUP).

# The descendants of <pid>, deepest first.
_descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    _descendants "${child}"
    echo "${child}"
  done
}

# stop_tree <pid>: SIGTERM to <pid> and its descendants, SIGKILL to what is left after 10 s.
stop_tree() {
  local pids _
  # shellcheck disable=SC2046  # a list of pids
  pids="$(_descendants "$1") $1"
  # shellcheck disable=SC2086
  kill -TERM ${pids} 2>/dev/null || true
  for _ in $(seq 20); do
    # shellcheck disable=SC2086
    kill -0 ${pids} 2>/dev/null || return 0
    sleep 0.5
  done
  # shellcheck disable=SC2046,SC2086
  kill -KILL ${pids} $(_descendants "$1") 2>/dev/null || true
}

run_supervised() {
  local child code=0
  "$@" &
  child=$!
  # shellcheck disable=SC2064  # the child's pid, now
  trap "echo '$0: stopping (pid ${child} and its jobs)' >&2; stop_tree ${child}; exit 143" TERM
  # shellcheck disable=SC2064
  trap "echo '$0: interrupted: stopping (pid ${child} and its jobs)' >&2; stop_tree ${child}; exit 130" INT
  # shellcheck disable=SC2064
  trap "stop_tree ${child}; exit 129" HUP
  wait "${child}" || code=$?
  trap - TERM INT HUP
  return "${code}"
}
