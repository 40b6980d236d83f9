#!/usr/bin/env bash
# The bash completion (src/portpub.bash) against the built binary: commands,
# every option of each command's --help, forward's verbs, values from the
# system. No root, no network: completion only reads.
#   completion_test.sh PORTPUB COMPLETION_FILE
set -euo pipefail
portpub=$1
# shellcheck source=/dev/null
source "$2"
failures=0

# The candidates bash would offer for the words of a line (the last one being
# completed), one a line, sorted.
candidates() {
    COMP_WORDS=("$portpub" "${@:1}")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _portpub
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort
}

expect() {  # expect "WHAT" "EXPECTED (space separated)" WORDS...
    local what=$1 want got
    want=$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort)
    got=$(candidates "${@:3}")
    if [[ $got != "$want" ]]; then
        echo "FAIL: $what: expected [$(echo $want)], got [$(echo $got)]" >&2
        failures=$((failures + 1))
    else
        echo "ok: $what"
    fi
}

[[ $(complete -p portpub) == "complete -F _portpub portpub" ]] ||
    { echo "FAIL: not registered for portpub" >&2; failures=$((failures + 1)); }

# The commands are those the main help lists.
commands=$("$portpub" --help | sed -nE '/^Commands:/,/^$/s/^  ([a-z-]+) .*/\1/p' | tr '\n' ' ')
[[ $(wc -w <<<"$commands") -ge 10 && " $commands " == *" help "* ]] || { echo "FAIL: main help lists [$commands]" >&2; exit 1; }
expect "commands" "$commands" ""
expect "commands starting with 'f'" "forward" "f"

# Every option each command's help lists, and --help.
for command in up down ls check restore gc oci-hook version; do
    options=$("$portpub" "$command" --help | grep -oE '^  (-[a-z], |    )--[a-z0-9-]+' |
              grep -oE -- '--[a-z0-9-]+' | tr '\n' ' ' || true)
    expect "options of $command" "$options --help" "$command" "--"
done
expect "up's options are the default command's" "$(candidates up --sub | tr '\n' ' ')" -p 80 --sub
expect "up --sub" "--subnet --subnet6" up --sub
count=$(candidates up -- | wc -l)
[[ $count -eq 18 ]] || { echo "FAIL: up has 17 options and --help, got $count" >&2; failures=$((failures + 1)); }

expect "up --firewall" "auto none" up --firewall ""
expect "up --loopback" "kernel proxy" up --loopback ""
expect "forward's verbs" "apply ls rm" forward ""
expect "forward options" "--config --help --json --no-watch --publish --state-dir --to" forward ls --

# Values from the system.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/containers" "$dir/netns"
touch "$dir/containers/web1.json" "$dir/containers/db.json" "$dir/netns/web1"
expect "--id from the records of --state-dir" "web1" down --state-dir "$dir" --id w
expect "--netns completes files" "$dir/netns/web1" up --netns "$dir/netns/w"
expect "a value of the user's own gets nothing" "" up -p ""
expect "help COMMAND" "check" help ch
expect "--state-dir=DIR is read too" "web1" down --state-dir="$dir" --id w
touch "$dir/netns/with space"
got=$(candidates up --netns "$dir/netns/with")
[[ $got == "$dir/netns/with space" ]] ||
    { echo "FAIL: a file name with a space is one candidate, got [$got]" >&2; failures=$((failures + 1)); }

((failures == 0)) || { echo "completion: $failures failures" >&2; exit 1; }
echo "completion: all cases pass"
