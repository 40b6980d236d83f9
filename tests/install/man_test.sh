#!/usr/bin/env bash
# The manual (man/portpub.8): renders without a warning under groff and
# mandoc, and documents every command and option of the built binary, every
# OCI annotation and CNI configuration key the code reads.
#   man_test.sh PORTPUB MANPAGE SOURCE_DIR
set -euo pipefail
portpub=$1 page=$2 src=$3
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# groff exits 0 on warnings: any output at all is a failure.
out=$(groff -man -ww -z "$page" 2>&1) || fail "groff exited $?"
[[ -z $out ]] || fail "groff: $out"
out=$(mandoc -T lint -W style "$page" 2>&1) || fail "mandoc -T lint: status $?"
[[ -z $out ]] || fail "mandoc: $out"

# The text a reader sees, hyphens and all.
text=$(MANWIDTH=200 man -l "$page" 2>/dev/null | col -b)
has() { grep -qF -- "$1" <<<"$text"; }

commands=$("$portpub" --help | sed -nE '/^Commands:/,/^$/s/^  ([a-z-]+) .*/\1/p')
[[ $(wc -l <<<"$commands") -ge 9 ]] || fail "the main help lists too few commands: $commands"
for command in $commands; do
    grep -qE "^   $command( |,|$)" <<<"$text" || fail "command $command has no section"
    for option in $("$portpub" "$command" --help | grep -oE '^  (-[a-z], |    )--[a-z0-9-]+' |
                    grep -oE -- '--[a-z0-9-]+' || true); do
        grep -qE -- "$option([^a-z0-9-]|$)" <<<"$text" ||
            fail "option $option of $command is not in the manual"
    done
done
for section in SYNOPSIS DESCRIPTION COMMANDS "PORT SPECS" "BINDING AND FORWARDING" \
    "OCI ANNOTATIONS" CNI FILES "EXIT STATUS" EXAMPLES; do
    grep -qx "$section" <<<"$text" || fail "no section $section"
done

# Every annotation and CNI key the code knows.
for annotation in $(grep -ohE '"io\.portpub\.[a-z0-9]+"' "$src"/include/plan/portpub/oci_hook.hpp | tr -d '"'); do
    has "$annotation" || fail "annotation $annotation is not in the manual"
done
for key in $(grep -ohE 'string_field\(j, "[a-zA-Z]+"' "$src"/src/plan/cni.cpp | grep -oE '"[a-zA-Z]+"' | tr -d '"') \
    ipv6 portMappings hostPort containerPort protocol hostIP; do
    case $key in cniVersion | name | type) continue ;; esac
    has "$key" || fail "CNI key $key is not in the manual"
done
for example in "8080:80" "192.0.2.1::80" "8000-8010:80-90" "[2001:db8::1]:8080:80" "5353:53/udp"; do
    has "$example" || fail "-p example $example is missing"
done

((failures == 0)) || { echo "man: $failures failures" >&2; exit 1; }
echo "man: renders cleanly; every command, option, annotation and CNI key is in it"
