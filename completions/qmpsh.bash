# bash completion for qmpsh                                 -*- shell-script -*-
#
# Installed by pip as share/bash-completion/completions/qmpsh; or run
#   eval "$(qmpsh --completions bash)"
# from ~/.bashrc.  Needs only bash 4 (bash-completion is not required).
# Socket paths come from `qmpsh --list-sockets`, which looks but never connects.

_qmpsh_options='--help -h --version --launch --wait --command -c --file -f
    --format --pretty -p --exit-on-error --events --events-filter --wait-event
    --timeout --verbose -v --hmp -H --skip-negotiation -N --logfile -l
    --transcript --no-validate --yes -y --quiet -q --no-pane --no-pager
    --color --config --reconnect --completions --list-sockets'

# Adds the lines of stdin that start with $1 to COMPREPLY, each once (a socket is
# also a file), with no word splitting or globbing.
_qmpsh_add_matching()
{
    local line seen
    while IFS= read -r line; do
        [[ -n $line && $line == "$1"* ]] || continue
        for seen in "${COMPREPLY[@]}"; do
            [[ $seen == "$line" ]] && continue 2
        done
        COMPREPLY+=("$line")
    done
}

_qmpsh_files()
{
    compopt -o filenames 2>/dev/null
    _qmpsh_add_matching "$1" < <(compgen -f -- "$1")
}

_qmpsh_sockets()
{
    local cmd=${COMP_WORDS[0]/#\~/$HOME}
    _qmpsh_add_matching "$1" < <(command "$cmd" --list-sockets 2>/dev/null)
}

# Completes the argument of option $1 with the word $2 typed so far; fails if $1
# takes no argument.
_qmpsh_option_value()
{
    case $1 in
        --format) _qmpsh_add_matching "$2" < <(printf '%s\n' pretty json raw) ;;
        --color) _qmpsh_add_matching "$2" < <(printf '%s\n' auto always never) ;;
        --completions) _qmpsh_add_matching "$2" < <(printf '%s\n' bash zsh fish) ;;
        -f | --file | -l | --logfile | --transcript | --events | --config) _qmpsh_files "$2" ;;
        -c | --command | --events-filter | --wait-event | --timeout | --wait) ;;
        *) return 1 ;;
    esac
}

_qmpsh()
{
    COMPREPLY=()
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- ]]; then
            _qmpsh_files "$cur" # arguments for QEMU (--launch -- ...)
            return 0
        fi
    done
    # --opt=value, split by COMP_WORDBREAKS into "--opt" "=" "value" or kept whole.
    if [[ $cur == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 1]} cur=
    elif [[ $prev == = && COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        local option=${cur%%=*} value=${cur#*=}
        _qmpsh_option_value "$option" "$value" || return 0
        COMPREPLY=("${COMPREPLY[@]/#/$option=}")
        return 0
    fi
    if [[ $prev == -* ]] && _qmpsh_option_value "$prev" "$cur"; then
        return 0
    fi
    if [[ $cur == -* ]]; then
        # shellcheck disable=SC2086  # the option list is split on purpose
        _qmpsh_add_matching "$cur" < <(printf '%s\n' $_qmpsh_options)
        return 0
    fi
    _qmpsh_sockets "$cur"
    _qmpsh_files "$cur"
}

complete -F _qmpsh qmpsh
