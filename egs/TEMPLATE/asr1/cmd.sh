# shellcheck shell=bash
# Job runners of the data-parallel stages (utils/jobs/common.sh describes them).
# Choose the backend with cmd_backend, or ESPNET_DISTILL_CMD_BACKEND in the environment.
cmd_backend=${ESPNET_DISTILL_CMD_BACKEND:-local}

case "${cmd_backend}" in
  local)
    # Jobs run on this machine, all at once.
    train_cmd="utils/jobs/local.sh"
    cuda_cmd="utils/jobs/local.sh"
    decode_cmd="utils/jobs/local.sh"
    ;;
  slurm)
    # Jobs run as slurm arrays; adjust memory, GPUs and partition to your cluster.
    train_cmd="utils/jobs/slurm.sh --mem 4G --num_threads 2"
    cuda_cmd="utils/jobs/slurm.sh --mem 16G --gpu 1 --num_threads 4"
    decode_cmd="utils/jobs/slurm.sh --mem 4G --num_threads 1"
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
    return 1
    ;;
esac
export train_cmd cuda_cmd decode_cmd
