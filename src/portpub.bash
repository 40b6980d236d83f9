# bash completion for portpub(8); installed as
# share/bash-completion/completions/portpub by `cmake --install`.
# The options of each command come from its own --help, so they never drift
# from the binary; values come from the system (namespaces, interfaces,
# published containers).

_portpub_options() {  # the long options of a command, from its --help
    "$1" "$2" --help 2>/dev/null |
        sed -nE 's/^  (-[a-zA-Z], |    )(--[a-z0-9-]+).*/\2/p' |
        sort -u
}

_portpub_ids() {  # published containers: the records' names
    local dir=$1 f
    for f in "$dir"/containers/*.json; do
        [[ -e $f ]] || continue
        f=${f##*/}
        printf '%s\n' "${f%.json}"
    done 2>/dev/null
}

_portpub() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local bin=${COMP_WORDS[0]} commands="up down ls check restore gc watch forward oci-hook version help"
    local command=up verb="" state=/run/portpub i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((i == 1)) && [[ " $commands " == *" $word "* ]]; then
            command=$word
        elif [[ $command == forward && -z $verb && " ls rm apply " == *" $word "* ]]; then
            verb=$word
        elif [[ $word == --state-dir ]] && ((i + 1 < COMP_CWORD)); then
            state=${COMP_WORDS[i + 1]}
        elif [[ $word == --state-dir=* ]]; then
            state=${word#--state-dir=}
        fi
    done
    COMPREPLY=()

    case $prev in
        --netns)
            mapfile -t COMPREPLY < <(compgen -f -- "${cur:-/run/netns/}")
            compopt -o filenames 2>/dev/null
            return 0 ;;
        --state-dir)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            compopt -o filenames 2>/dev/null
            return 0 ;;
        --config)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            compopt -o filenames 2>/dev/null
            return 0 ;;
        --bridge)
            COMPREPLY=($(compgen -W "portpub0 $(ls /sys/class/net 2>/dev/null)" -- "$cur"))
            return 0 ;;
        --id)
            COMPREPLY=($(compgen -W "$(_portpub_ids "$state")" -- "$cur"))
            return 0 ;;
        --firewall)
            COMPREPLY=($(compgen -W "auto none" -- "$cur"))
            return 0 ;;
        --loopback)
            COMPREPLY=($(compgen -W "kernel proxy" -- "$cur"))
            return 0 ;;
        --cgroup)
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            compopt -o filenames 2>/dev/null
            return 0 ;;
        -p | --publish | --subnet | --subnet6 | --ifname | --udp-timeout | --to)
            return 0 ;;  # a value of the user's own
    esac

    if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
    fi
    if [[ $command == help ]]; then
        ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "${commands% help}" -- "$cur"))
        return 0
    fi
    if [[ $command == forward && -z $verb && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "ls rm apply" -- "$cur"))
        return 0
    fi
    if [[ $cur == -* || $command != forward ]]; then
        COMPREPLY=($(compgen -W "--help $(_portpub_options "$bin" "$command")" -- "$cur"))
    fi
    return 0
}

complete -F _portpub portpub
