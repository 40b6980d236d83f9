#!/usr/bin/env bash
# `cmake --install` puts the binary, the manual and the bash completion where
# man(1) and bash-completion look for them under the prefix.
#   install_test.sh BUILD_DIR
set -euo pipefail
# (Outputs are captured before grep: under pipefail, grep -q quitting early
# would fail the writer with SIGPIPE.)
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $prefix/sbin/portpub ]] || fail "no sbin/portpub"
grep -q '^portpub ' <<<"$("$prefix/sbin/portpub" version)" || fail "the installed binary does not run"
[[ -f $prefix/share/man/man8/portpub.8 ]] || fail "no share/man/man8/portpub.8"
grep -qx "$prefix/share/man/man8/portpub.8" <<<"$(MANPATH=$prefix/share/man man -w portpub)" ||
    fail "man does not find the page under the prefix"
grep -q 'portpub - publish container ports' <<<"$(MANPATH=$prefix/share/man MANWIDTH=80 man 8 portpub 2>/dev/null)" ||
    fail "man 8 portpub does not show the page"
completion=$prefix/share/bash-completion/completions/portpub
[[ -f $completion ]] || fail "no share/bash-completion/completions/portpub"
grep -q _portpub <<<"$(bash -c "source '$completion' && complete -p portpub")" ||
    fail "the installed completion does not register"
echo "install: sbin/portpub, share/man/man8/portpub.8, share/bash-completion/completions/portpub"
