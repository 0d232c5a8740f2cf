# shellcheck shell=bash
# The training jobs of a stage (pretraining, distillation, fine-tuning), sourced after
# utils/stage_steps.sh by distill_asr.sh and ssl1/run.sh:
#
#   train_job <exp dir> <command> [<arg> ...]   queues a job that trains into <exp dir>
#   run_train_jobs <label>                      runs the queue, at most ${train_jobs} at a time
#                                               (utils/jobs/parallel.sh; 1 when unset), shows the
#                                               jobs' progress (step, loss, ETA; recipe/watch_progress),
#                                               and exits 1 naming every exp dir whose job failed
#                                               after the others have ended.
. "$(dirname "${BASH_SOURCE[0]}")/jobs/parallel.sh"

queued_dirs=()
queued_commands=()

train_job() {
  queued_dirs+=("$1")
  queued_commands+=("$(printf '%q ' "${@:2}")")
}

# run_queued_job <index>: one job of the queue (a command of the calling script, quoted by train_job);
# its status is the job's.
run_queued_job() {
  eval "${queued_commands[$1]}" || return
}

run_train_jobs() {
  local label=$1 at_once=${train_jobs:-1} watcher index failed=()
  [ "${#queued_dirs[@]}" -gt 0 ] || return 0
  python -m espnet_distill.recipe.watch_progress --label "${label}" --parallel "${at_once}" --parent $$ \
    "${queued_dirs[@]}" &
  watcher=$!
  [ "${at_once}" -ge 1 ] || at_once=1
  run_parallel "${at_once}" run_queued_job "${!queued_dirs[@]}"
  stop_watcher "${watcher}"
  for index in "${parallel_failed[@]}"; do failed+=("${queued_dirs[index]}"); done
  queued_dirs=()
  queued_commands=()
  if [ "${#failed[@]}" -gt 0 ]; then
    log "Error: failed: ${failed[*]} (see their train.log)"
    exit 1
  fi
}
