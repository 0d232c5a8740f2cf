#!/usr/bin/env bash
# Strict command-line option parser for recipe scripts; source it after the defaults:
#
#   stage=1         # every option is a variable with a default
#   use_gpu=false
#   seed=""
#   _int_options="seed"   # optional: options that take integers although their default does not show it
#   _int_list_options="seeds"  # optional: options that take a list of integers ("1 2 3"), whatever their default
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# "--foo_bar value", "--foo-bar value" and "--foo_bar=value" set foo_bar.
# Every mistake exits 2 naming the option, so typos never pass silently:
#   - an option with no variable of that name;
#   - a missing value: "--stage" last, or "--stage --stop_stage 2" (a value that is itself one of the options);
#   - a value of the wrong type: a variable whose default is an integer (or that _int_options names)
#     takes only integers, one whose default is true/false only true or false, one that _int_list_options
#     names only integers separated by spaces.
# Parsing stops at the first non-option argument or at "--"; the positional
# arguments are left in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      printf '%s\n' "${help_message:-No help found for $0.}"
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      __opt_name=${1%%=*}
      __opt_value=${1#*=}
      shift
      ;;
    --*)
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 2
      fi
      __opt_name=$1
      __opt_value=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac
  __opt_name=${__opt_name#--}
  __opt_name=${__opt_name//-/_}
  if ! [[ ${__opt_name} =~ ^[a-z][a-z0-9_]*$ ]] || [[ ! -v ${__opt_name} ]]; then
    echo "$0: unknown option --${__opt_name}" >&2
    if [ -n "${help_message:-}" ]; then printf '%s\n' "${help_message}" >&2; fi
    exit 2
  fi
  # "--stage --stop_stage 2": the value is the next option, so --stage has none.
  if [[ ${__opt_value} =~ ^--([a-z][a-z0-9_-]*)$ ]]; then
    __next=${BASH_REMATCH[1]//-/_}
    if [[ -v ${__next} ]]; then
      echo "$0: option --${__opt_name} needs a value (got the option --${__next})" >&2
      exit 2
    fi
  fi
  case "${!__opt_name}" in
    true | false)
      if [ "${__opt_value}" != true ] && [ "${__opt_value}" != false ]; then
        echo "$0: option --${__opt_name} takes true or false, not '${__opt_value}'" >&2
        exit 2
      fi
      ;;
  esac
  if [[ " ${_int_list_options:-} " == *" ${__opt_name} "* ]]; then
    if ! [[ ${__opt_value} =~ ^[[:space:]]*([0-9]+[[:space:]]*)*$ ]]; then
      echo "$0: option --${__opt_name} takes integers separated by spaces, not '${__opt_value}'" >&2
      exit 2
    fi
  elif [[ ${!__opt_name} =~ ^[0-9]+$ ]] || [[ " ${_int_options:-} " == *" ${__opt_name} "* ]]; then
    if ! [[ ${__opt_value} =~ ^[0-9]+$ ]] && ! [[ -z ${__opt_value} && -z ${!__opt_name} ]]; then
      echo "$0: option --${__opt_name} takes a non-negative integer, not '${__opt_value}'" >&2
      exit 2
    fi
  fi
  printf -v "${__opt_name}" '%s' "${__opt_value}"
done
unset __opt_name __opt_value __next
true
