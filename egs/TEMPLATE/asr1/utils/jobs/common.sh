#!/usr/bin/env bash
# Shared by the job runners utils/jobs/local.sh and utils/jobs/slurm.sh; sourced, not run.
#
# Interface of both runners:
#   <runner> [options] [JOB=1:N] <log> <command> [<arg> ...]
# Every occurrence of the name JOB in <log> and in the arguments is replaced by
# the job index.  Each job writes its command, start and end (with exit code)
# into its own log; an earlier attempt's log is kept as <log>.1, <log>.2, ...
# The runner exits 1 naming the log of every failed job.
#
# Options (a runner ignores what its backend cannot use):
#   --max_jobs_run N   at most N jobs at a time (0: no limit)
#   --num_threads N    threads per job (OMP/MKL threads; CPUs per task on slurm)
#   --mem SIZE         memory per job (slurm)
#   --gpu N            GPUs per job (slurm; CUDA_VISIBLE_DEVICES is left alone locally)
#   --time LIMIT       time limit (slurm)
#   --partition NAME   partition (slurm)

jobs_usage() {
  cat >&2 <<USAGE
Usage: $0 [--max_jobs_run N] [--num_threads N] [--mem SIZE] [--gpu N] [--time T] [--partition P] \\
          [JOB=1:N] <log> <command> [<arg> ...]
e.g.:  $0 JOB=1:4 exp/log/fbank.JOB.log python -m espnet_distill.bin.compute_fbank --wav_scp split/wav.JOB.scp ...
USAGE
  exit 2
}

# shellcheck disable=SC2034  # the options are read by the runner that sources this file (local.sh, slurm.sh)
jobs_parse_args() {
  max_jobs_run=0
  num_threads=""
  mem=""
  gpu=0
  time_limit=""
  partition=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --max_jobs_run) max_jobs_run=$2; shift 2 ;;
      --num_threads) num_threads=$2; shift 2 ;;
      --mem) mem=$2; shift 2 ;;
      --gpu) gpu=$2; shift 2 ;;
      --time) time_limit=$2; shift 2 ;;
      --partition) partition=$2; shift 2 ;;
      --*) echo "$0: unknown option $1" >&2; jobs_usage ;;
      *) break ;;
    esac
  done
  job_var=""
  job_start=1
  job_end=1
  if [[ ${1:-} =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    job_var=${BASH_REMATCH[1]}
    job_start=${BASH_REMATCH[2]}
    job_end=${BASH_REMATCH[3]}
    shift
    if [ "${job_start}" -gt "${job_end}" ]; then
      echo "$0: empty job range ${job_start}:${job_end}" >&2
      exit 2
    fi
  elif [[ ${1:-} == *=* ]]; then
    echo "$0: bad job range '$1' (expected e.g. JOB=1:4)" >&2
    exit 2
  fi
  [ $# -ge 2 ] || jobs_usage
  job_log=$1
  shift
  job_cmd=("$@")
}

# keep_earlier_log <log>: an existing <log>, an earlier attempt's, is kept as <log>.1, <log>.2, ...
# (oldest first), so that a rerun never overwrites the reason a run failed.
keep_earlier_log() {
  local log=$1 n=1
  [ -e "${log}" ] || return 0
  while [ -e "${log}.${n}" ]; do n=$((n + 1)); done
  mv "${log}" "${log}.${n}"
}

# job_subst <index> <string>: the string with the job variable replaced by the index.
job_subst() {
  if [ -n "${job_var}" ]; then
    printf '%s' "${2//${job_var}/$1}"
  else
    printf '%s' "$2"
  fi
}

# job_argv <index>: fills the array job_argv_out with the job's command.
job_argv() {
  job_argv_out=()
  local arg
  for arg in "${job_cmd[@]}"; do
    job_argv_out+=("$(job_subst "$1" "${arg}")")
  done
}

# jobs_check_logs: exit 1 naming every job whose log lacks "# Ended (code 0)".
jobs_check_logs() {
  local i log failed=0 code ended
  for ((i = job_start; i <= job_end; i++)); do
    log=$(job_subst "$i" "${job_log}")
    ended=$(grep -a '^# Ended (code [0-9]*)' "${log}" 2>/dev/null | tail -n 1) || true
    code=""
    [[ ${ended} =~ ^#\ Ended\ \(code\ ([0-9]+)\) ]] && code=${BASH_REMATCH[1]}
    if [ "${code}" != 0 ]; then
      failed=$((failed + 1))
      echo "$0: job ${i} failed (exit code ${code:-unknown}); see ${log}" >&2
    fi
  done
  if [ "${failed}" -gt 0 ]; then
    echo "$0: ${failed} of $((job_end - job_start + 1)) jobs failed" >&2
    exit 1
  fi
}
