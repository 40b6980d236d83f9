#!/usr/bin/env bash
# README command (2): install what is missing, build, run the whole test suite;
# then the same suite built with ASan, LeakSanitizer and UBSan (build-asan/),
# and 10 s of fuzzing for each parser of outside input (build-fuzz/).
#   scripts/test.sh [--quick] [ctest options]   (--quick: the plain suite only)
# Integration tests need root; each one builds its own network namespaces and
# never touches the namespace it was started in.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [[ "${1:-}" == "--quick" ]]; then
  quick=1
  shift
fi
phase() { printf 'test: %s (%d:%02d so far)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); }
scripts/setup.sh
phase "build"
scripts/build.sh
phase "the suite"
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
if ((quick)); then phase "done"; exit 0; fi
# Under the sanitizers, the crash sweep (126 kills of up/down/gc) and the
# 50-container rounds are left out: they run, hundreds of times over, the code
# the rest of the suite runs under the sanitizers too, and would take a third
# of the time. The plain suite above runs them.
phase "the suite again, under ASan, LeakSanitizer and UBSan"
scripts/sanitize.sh -E 'killed at any step|50 containers up and down' "$@"
phase "fuzzing, 10 s for each target"
scripts/fuzz.sh 10
phase "done"
