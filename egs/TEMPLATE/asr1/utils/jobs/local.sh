#!/usr/bin/env bash
# Run jobs on this machine, in parallel; see utils/jobs/common.sh for the interface.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
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

running=0
for ((i = job_start; i <= job_end; i++)); do
  if [ "${max_jobs_run}" -gt 0 ] && [ "${running}" -ge "${max_jobs_run}" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$i" &
  running=$((running + 1))
done
wait || true
jobs_check_logs
