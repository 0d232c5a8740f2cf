#!/usr/bin/env bash
# Run jobs as one slurm array (sbatch --wait); see utils/jobs/common.sh for the interface.
# The job scripts are kept in <log dir>/q/ for inspection and reruns.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
jobs_parse_args "$@"

log_dir=$(dirname "$(job_subst 1 "${job_log}")")
name=$(basename "${job_log}" .log)
name=${name//.${job_var:-JOB}/}
qdir=${log_dir}/q
mkdir -p "${qdir}"
for ((i = job_start; i <= job_end; i++)); do
  log=$(job_subst "$i" "${job_log}")
  mkdir -p "$(dirname "${log}")"
  keep_earlier_log "${log}"
  job_argv "$i"
  # shellcheck disable=SC2016,SC2028  # the job script's own lines, written as they are
  {
    echo '#!/usr/bin/env bash'
    printf 'cd %q\n' "${PWD}"
    [ -n "${num_threads}" ] && echo "export OMP_NUM_THREADS=${num_threads} MKL_NUM_THREADS=${num_threads}"
    echo '{'
    printf 'echo %q\n' "# $(printf '%q ' "${job_argv_out[@]}")"
    echo 'printf "# Started at %s on %s\n" "$(date)" "$(hostname)"'
    echo 'start=${SECONDS}; code=0'
    printf '%q ' "${job_argv_out[@]}"
    echo '|| code=$?'
    echo 'printf "# Accounting: time=%d\n# Ended (code %d) at %s\n" "$((SECONDS - start))" "${code}" "$(date)"'
    printf '} >%q 2>&1 </dev/null\n' "${log}"
    echo 'exit ${code}'
  } >"${qdir}/${name}.${i}.sh"
done

opts=(--wait --job-name "${name}" --output "${qdir}/${name}.%a.out")
array="${job_start}-${job_end}"
[ "${max_jobs_run}" -gt 0 ] && array+="%${max_jobs_run}"
opts+=(--array "${array}")
[ -n "${num_threads}" ] && opts+=(--cpus-per-task "${num_threads}")
[ -n "${mem}" ] && opts+=(--mem "${mem}")
[ "${gpu}" -gt 0 ] && opts+=(--gres "gpu:${gpu}")
[ -n "${time_limit}" ] && opts+=(--time "${time_limit}")
[ -n "${partition}" ] && opts+=(--partition "${partition}")
sbatch "${opts[@]}" --wrap "bash ${qdir}/${name}.\${SLURM_ARRAY_TASK_ID}.sh" >/dev/null || true
jobs_check_logs
