#!/usr/bin/env bash
# Run jobs on this machine, in parallel; see utils/jobs/common.sh for the interface.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/parallel.sh"
jobs_parse_args "$@"

run_one() {
  local index=$1 log
  log=$(job_subst "${index}" "${job_log}")
  job_argv "${index}"
  mkdir -p "$(dirname "${log}")"
  keep_earlier_log "${log}"
  {
    printf '#'
    printf ' %q' "${job_argv_out[@]}"
    printf '\n# Started at %s on %s\n' "$(date)" "$(hostname)"
    local start=${SECONDS} code=0
    if [ -n "${num_threads}" ]; then
      OMP_NUM_THREADS=${num_threads} MKL_NUM_THREADS=${num_threads} "${job_argv_out[@]}" || code=$?
    else
      "${job_argv_out[@]}" || code=$?
    fi
    printf '# Accounting: time=%d\n# Ended (code %d) at %s\n' "$((SECONDS - start))" "${code}" "$(date)"
  } >"${log}" 2>&1 </dev/null
}

# Every job, --max_jobs_run at a time (utils/jobs/parallel.sh); the logs tell which failed.
run_parallel "${max_jobs_run}" run_one $(seq "${job_start}" "${job_end}")
jobs_check_logs
