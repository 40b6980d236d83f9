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
scripts/setup.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
((quick)) && exit 0
echo "test: the suite again, under ASan, LeakSanitizer and UBSan"
scripts/sanitize.sh "$@"
echo "test: fuzzing, 10 s for each target"
scripts/fuzz.sh 10
