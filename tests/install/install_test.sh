#!/usr/bin/env bash
# `cmake --install` puts the binary, the manual and the bash completion where
# man(1) and bash-completion look for them under the prefix.
#   install_test.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $prefix/sbin/portpub ]] || fail "no sbin/portpub"
"$prefix/sbin/portpub" version | grep -q '^portpub ' || fail "the installed binary does not run"
[[ -f $prefix/share/man/man8/portpub.8 ]] || fail "no share/man/man8/portpub.8"
MANPATH=$prefix/share/man man -w portpub | grep -qx "$prefix/share/man/man8/portpub.8" ||
    fail "man does not find the page under the prefix"
MANPATH=$prefix/share/man MANWIDTH=80 man 8 portpub 2>/dev/null | grep -q 'portpub - publish container ports' ||
    fail "man 8 portpub does not show the page"
completion=$prefix/share/bash-completion/completions/portpub
[[ -f $completion ]] || fail "no share/bash-completion/completions/portpub"
bash -c "source '$completion' && complete -p portpub" | grep -q _portpub ||
    fail "the installed completion does not register"
echo "install: sbin/portpub, share/man/man8/portpub.8, share/bash-completion/completions/portpub"
