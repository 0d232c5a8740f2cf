#!/usr/bin/env bash
# Sourced by distill_asr.sh: the students of --distill_configs and --distill_frontends, the one list that
# stage 5 distills and stages 7-10 read.  Needs path.sh (it reads each config's front-end).

# distill_students "<config> ..." "<front-end> ...": one "<name> <config> <front-end>" line per student,
# each config with each front-end in turn; an empty front-end list gives each config its own front-end.
# The student of config C (conf/distill/C.yaml) with front-end F is named C when F is C's own front-end
# (its `frontend:`, else distill_train's default, wav_cnn) and C_F otherwise: stage 5 distills it from C
# with `--frontend F` after `--config`, which overrides the YAML's.  Fails with a message on a front-end
# distill_train does not know, an unreadable config, or two students of the same name.
distill_students() {
  local configs=$1 frontends=$2 conf own frontend name seen=" "
  for frontend in ${frontends}; do
    case "${frontend}" in
      wav_cnn | fbank) ;;  # distill_train's --frontend choices
      *) echo "$0: option --distill_frontends takes wav_cnn and fbank, not '${frontend}'" >&2; return 1 ;;
    esac
  done
  for conf in ${configs}; do
    own=$(python -m espnet_distill.recipe.query --default wav_cnn "${conf}" frontend) || return 1
    for frontend in ${frontends:-${own}}; do
      name=$(basename "${conf}" .yaml)
      [ "${frontend}" = "${own}" ] || name=${name}_${frontend}
      if [[ "${seen}" == *" ${name} "* ]]; then
        echo "$0: two students named ${name} (--distill_configs \"${configs}\" --distill_frontends \"${frontends}\")" >&2
        return 1
      fi
      seen="${seen}${name} "
      echo "${name} ${conf} ${frontend}"
    done
  done
}
