# shellcheck shell=bash
# The one place that runs N jobs at a time, sourced by utils/jobs/local.sh (its JOB=1:N jobs) and by
# utils/train_jobs.sh (the training jobs of a stage).
#
# run_parallel <n> <command> <arg> ...: runs "<command> <arg>" for each <arg> in the background, at most
# <n> at a time (0: all at once), and waits for every one.  The args whose command failed are left in
# the array parallel_failed, in the order they ended.  Other background jobs of the caller (a progress
# watcher) are not waited for.

run_parallel() {
  local max=$1 command=$2 arg
  local -A _parallel_args=()  # pid -> arg of the jobs still running
  shift 2
  parallel_failed=()
  for arg in "$@"; do
    while [ "${max}" -gt 0 ] && [ "${#_parallel_args[@]}" -ge "${max}" ]; do
      _run_parallel_reap
    done
    "${command}" "${arg}" &
    _parallel_args[$!]=${arg}
  done
  while [ "${#_parallel_args[@]}" -gt 0 ]; do
    _run_parallel_reap
  done
}

# Waits until a job of run_parallel ends, then records every job that has ended.
_run_parallel_reap() {
  local pid="" status=0
  wait -n -p pid "${!_parallel_args[@]}" 2>/dev/null || status=$?
  # wait -n names the job it collected; it fails at once naming none when a job has already been
  # collected by the shell, whose status "wait <pid>" still gives.
  [ -z "${pid:-}" ] || _run_parallel_ended "${pid}" "${status}"
  for pid in "${!_parallel_args[@]}"; do
    kill -0 "${pid}" 2>/dev/null && continue
    status=0
    wait "${pid}" 2>/dev/null || status=$?
    _run_parallel_ended "${pid}" "${status}"
  done
}

# _run_parallel_ended <pid> <status>
_run_parallel_ended() {
  [ "$2" -eq 0 ] || parallel_failed+=("${_parallel_args[$1]}")
  unset "_parallel_args[$1]"
}
