#!/usr/bin/env bash
# Sourced by distill_asr.sh: the students of --distill_configs and --distill_frontends, the one list that
# stage 5 distills and stages 7-10 read.  Needs path.sh (it reads each config's front-end).

# distill_students "<config> ..." "<front-end> ...": one "<name> <config> <front-end> <start> <role>" line
# per student, each config with each front-end in turn; an empty front-end list gives each config its own
# front-end.  The student of config C (conf/distill/C.yaml) with front-end F is named C when F is C's own
# front-end (its `frontend:`, else distill_train's default, wav_cnn) and C_F otherwise: stage 5 distills it
# from C with `--frontend F` after `--config`, which overrides the YAML's.
#
# <start>: a config whose `init_student:` is exp/distill_<D> starts from the student of the config
# D.yaml beside it, with the same front-end (a pruned student's final distillation starts from the
# pruning run: conf/distill/pruned_deep_thin_reg.yaml from prune_deep_thin_reg.yaml); <start> is that
# student's name, else "-".  Stage 5 distills it first, into exp/distill_<name>[_seed<N>], and passes it as
# --init_student.  A start that is not itself among the configs is added with <role> "start" (distilled,
# not fine-tuned or evaluated); every other line has <role> "student".
# A pruning config (model_conf.prune_conf) and a config that starts from another student take their own
# front-end only (the others of --distill_frontends are skipped with a message).
# Fails with a message on a front-end distill_train does not know, an unreadable config, a start config
# that does not exist, a start that needs a start of its own, or two students of the same name.
distill_students() {
  local configs=$1 frontends=$2 conf own own_only frontend name start start_conf start_own seen=" " lines=() starts=() start_names=" "
  for frontend in ${frontends}; do
    case "${frontend}" in
      wav_cnn | fbank) ;;  # distill_train's --frontend choices
      *) echo "$0: option --distill_frontends takes wav_cnn and fbank, not '${frontend}'" >&2; return 1 ;;
    esac
  done
  _own_frontend() {  # <config>: its `frontend:`, else distill_train's default
    python -m espnet_distill.recipe.query --default wav_cnn "$1" frontend
  }
  _student_name() {  # <config> <front-end> <the config's own front-end>: the student's name
    if [ "$2" = "$3" ]; then basename "$1" .yaml; else echo "$(basename "$1" .yaml)_$2"; fi
  }
  _start_config() {  # <config>: the config of its start (init_student: exp/distill_<D>), or nothing
    local init
    init=$(python -m espnet_distill.recipe.query --default "" "$1" init_student) || return 1
    [ -n "${init}" ] || return 0
    if [[ "${init}" != exp/distill_* ]] || [ ! -f "$(dirname "$1")/${init#exp/distill_}.yaml" ]; then
      echo "$0: $1: init_student: ${init} is not exp/distill_<D> of a config $(dirname "$1")/<D>.yaml" >&2
      return 1
    fi
    echo "$(dirname "$1")/${init#exp/distill_}.yaml"
  }
  for conf in ${configs}; do
    own=$(_own_frontend "${conf}") || return 1
    start_conf=$(_start_config "${conf}") || return 1
    if [ -n "${start_conf}" ] && [ -n "$(_start_config "${start_conf}")" ]; then
      echo "$0: ${conf} starts from ${start_conf}, which starts from another student: one start only" >&2
      return 1
    fi
    # A pruning run (model_conf.prune_conf) prunes a copy of the teacher, front-end included, and the student
    # that starts from it keeps that front-end: both are distilled with their own front-end only.
    own_only=${start_conf}
    [ -n "${own_only}" ] || own_only=$(python -m espnet_distill.recipe.query --default "" "${conf}" model_conf.prune_conf) \
      || return 1
    for frontend in ${frontends:-${own}}; do
      if [ -n "${own_only}" ] && [ "${frontend}" != "${own}" ]; then
        echo "$0: ${conf}: a pruned student keeps the teacher's front-end (${own}); not distilled with ${frontend}" >&2
        continue
      fi
      name=$(_student_name "${conf}" "${frontend}" "${own}")
      if [[ "${seen}" == *" ${name} "* ]]; then
        echo "$0: two students named ${name} (--distill_configs \"${configs}\" --distill_frontends \"${frontends}\")" >&2
        return 1
      fi
      seen="${seen}${name} "
      start=-
      if [ -n "${start_conf}" ]; then
        start_own=$(_own_frontend "${start_conf}") || return 1
        start=$(_student_name "${start_conf}" "${frontend}" "${start_own}")
        if [[ "${start_names}" != *" ${start} "* ]]; then
          start_names="${start_names}${start} "
          starts+=("${start} ${start_conf} ${frontend} - start")
        fi
      fi
      lines+=("${name} ${conf} ${frontend} ${start} student")
    done
  done
  for start in "${starts[@]}"; do  # the starts not among the students
    read -r name _ <<<"${start}"
    [[ "${seen}" == *" ${name} "* ]] || echo "${start}"
  done
  for name in "${lines[@]}"; do echo "${name}"; done
}
