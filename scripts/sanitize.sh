#!/usr/bin/env bash
# The whole test suite (unit, integration, demo) on a build instrumented with
# AddressSanitizer, LeakSanitizer and UBSan (gcc), in build-asan/. Needs root,
# as scripts/test.sh does. Extra arguments go to ctest.
#   scripts/sanitize.sh [ctest options]
# Reports are written to build-asan/sanitizer/, one file a process: the proxy
# `up` starts has its stderr on /dev/null, and a report on the stderr of the
# CLI would break the tests that check its one-line messages (the CNI plugin's
# stdout stays JSON either way). Any report there fails the run, even one from
# a process whose exit status nobody reads.
# Binaries run by runc, crun or Podman as hooks do not inherit this
# environment; they report on stderr, which fails the test that ran them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# -O1 -g1: half the compile time of the default -O2 -g (5 min against 10.5
# on 2 cores), the same test time, and reports still name files and lines.
cmake -S . -B build-asan -DPORTPUB_SANITIZE=ON -DPORTPUB_WERROR=OFF -DPORTPUB_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" >/dev/null
cmake --build build-asan -j"$(nproc)"

reports=$PWD/build-asan/sanitizer
rm -rf "$reports" && mkdir -p "$reports"
# exitcode: one status for every sanitizer, as a program's own failures do
# not use it; the reports say which it was.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:\
detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:\
strict_string_checks=1:log_path=$reports/asan:log_exe_name=1"
export LSAN_OPTIONS="exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86:log_path=$reports/ubsan:log_exe_name=1"

status=0
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@" || status=$?
# A file without an error report holds a note, such as LeakSanitizer's
# "Unable to get registers from thread N" when a proxy (asan.exe.PID) is
# killed during its exit-time leak check, by `down` after its grace period or
# by a test's clean-up: that process went unchecked, nothing was found.
found=0
for f in "$reports"/*; do
  [[ -e $f ]] || continue
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|^SUMMARY: ' "$f"; then
    echo "sanitize: report $f:" >&2
    head -n 80 "$f" >&2
    found=1
  else
    echo "sanitize: note $(basename "$f"): $(head -n 1 "$f")"
  fi
done
((found == 0)) || exit 1
exit "$status"
