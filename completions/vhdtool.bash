# SPDX-License-Identifier: BSD-3-Clause
# bash completion for vhdtool(1).
# Subcommands and their options come from the program's own help texts
# (`vhdtool help`, `vhdtool help CMD`), so completion follows the installed
# version; option values that are names are listed here, everything else
# completes as file names.

_vhdtool_commands()
{
  "$1" help 2>/dev/null |
    awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

_vhdtool_options()
{
  "$1" help "$2" 2>/dev/null | grep -oE -- '(^|[ ,\[])--?[a-zA-Z][a-zA-Z0-9-]*' |
    sed -e 's/^[ ,[]//' | sort -u
}

_vhdtool()
{
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n = || return
  else
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local tool=${words[0]}

  if [[ $cword -eq 1 ]]; then
    COMPREPLY=($(compgen -W "$(_vhdtool_commands "$tool") help --help --version" -- "$cur"))
    return
  fi
  local cmd=${words[1]}
  if [[ $cmd == help ]]; then
    [[ $cword -eq 2 ]] && COMPREPLY=($(compgen -W "$(_vhdtool_commands "$tool")" -- "$cur"))
    return
  fi

  # --option=value in one word
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    cur=${cur#*=}
  fi
  # compare: -s is --strict (no value), -F names B's format; measure
  # prints human or json.
  case $cmd:$prev in
    compare:-F|compare:--second-format)
      COMPREPLY=($(compgen -W "vhd vhdx raw" -- "$cur")); return ;;
    compare:-s) prev=--strict ;;
    measure:--output) COMPREPLY=($(compgen -W "human json" -- "$cur")); return ;;
  esac
  case $prev in
    -f|--source-format)
      # convert's -f names a source: the read-only formats too
      if [[ $cmd == convert ]]; then
        COMPREPLY=($(compgen -W "vhd vhdx raw qcow2 vmdk vdi" -- "$cur")); return
      fi
      COMPREPLY=($(compgen -W "vhd vhdx raw" -- "$cur")); return ;;
    --format|-O|--output-format)
      COMPREPLY=($(compgen -W "vhd vhdx raw" -- "$cur")); return ;;
    -t|--type)
      COMPREPLY=($(compgen -W "fixed dynamic differencing" -- "$cur")); return ;;
    --mode)
      COMPREPLY=($(compgen -W "ro cow rw" -- "$cur")); return ;;
    --profile)
      COMPREPLY=($(compgen -W "azure hyperv virtualpc" -- "$cur")); return ;;
    --parent-dir)
      COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --sector-size|--physical-sector-size)
      COMPREPLY=($(compgen -W "512 4096" -- "$cur")); return ;;
    --output)
      # every command that prints JSON; convert's --output is its -O
      if [[ $cmd != convert ]]; then
        COMPREPLY=($(compgen -W "human json" -- "$cur")); return
      fi ;;
    -s|--size|-b|--block-size|--offset|--length|--start-offset|--max-length|--reserve)
      return ;;   # a number: nothing to offer
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_vhdtool_options "$tool" "$cmd")" -- "$cur"))
    return
  fi
  if [[ $cmd == detach ]]; then
    COMPREPLY=($(compgen -W "$("$tool" attach --list 2>/dev/null | cut -f1)" -- "$cur"))
    return
  fi
  # Images are files: complete file names (and directories to descend).
  compopt -o filenames 2>/dev/null
  COMPREPLY=($(compgen -f -- "$cur"))
}

complete -F _vhdtool vhdtool
