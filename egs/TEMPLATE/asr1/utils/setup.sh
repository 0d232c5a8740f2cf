# shellcheck shell=bash
# Sourced by a recipe's run.sh before any work:
#   asks_for_help <arg> ...   true when the options ask for the usage (--help or -h where
#                             utils/parse_options.sh reads an option), which run.sh then prints
#                             without setting anything up;
#   install_tools             tools/install.sh of this checkout (or of ESPNET_DISTILL_ROOT): sets up
#                             a fresh machine (Debian packages, tools/venv), quick once done.
#                             path.sh only activates what it made.

asks_for_help() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --help | -h) return 0 ;;
      --) return 1 ;;
      --*=*) shift ;;
      --*) shift 2 || return 1 ;;
      *) return 1 ;;
    esac
  done
  return 1
}

install_tools() {
  "${ESPNET_DISTILL_ROOT:-$(cd ../../.. && pwd)}/tools/install.sh"
}
