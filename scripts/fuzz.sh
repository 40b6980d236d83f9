#!/usr/bin/env bash
# Fuzzes the readers of hostile input with libFuzzer, ASan and UBSan (clang):
# the -p grammar and the way to mappings, the OCI state of the hook, the CNI
# plugin's environment and configuration, the records read back from the
# state directory, and the forward file; SECONDS each (default 60).
#   scripts/fuzz.sh [SECONDS]
# Each target starts from its seeds, tests/fuzz/corpus/TARGET, copied into
# build-fuzz/corpus/TARGET, where what the fuzzer finds accumulates from run
# to run; the repository's corpus changes only by hand. A crash, a leak, a
# hang (10 s for one input) or 2 GiB of memory fails the run, with the input
# in build-fuzz/artifacts/TARGET/ and the log in build-fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds < 1 || seconds > 86400)); then
  echo "usage: scripts/fuzz.sh [SECONDS]   (1 to 86400 for each target, default 60)" >&2
  exit 2
fi
targets=(port_spec oci_state cni_config record forward_file)

scripts/setup.sh >/dev/null
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DPORTPUB_FUZZ=ON -DPORTPUB_TESTS=OFF \
  -DPORTPUB_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers >/dev/null

failed=()
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t artifacts=build-fuzz/artifacts/$t log=build-fuzz/logs/$t.log
  rm -rf "$artifacts"  # what is there comes from this run
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  # libFuzzer stops itself after -max_total_time; `timeout` is for the case
  # where it cannot (the last input hanging in a leak check, say).
  status=0
  timeout --kill-after=10 $((seconds + 60)) \
    build-fuzz/tests/fuzz/"$t"_fuzz "$corpus" -dict=tests/fuzz/"$t".dict \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts"/ -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if ((status != 0)); then
    echo "fuzz $t: FAILED (exit $status) after ${runs:-?} runs; input in $artifacts/, log $log:" >&2
    grep -E '^(fuzz: BUG|==[0-9]+==ERROR|SUMMARY|    #[0-9] )' "$log" | head -n 30 >&2 || true
    failed+=("$t")
  else
    echo "fuzz $t: ${seconds} s, ${runs:-?} runs, $(grep -o 'cov: [0-9]*' "$log" | tail -n 1), no crash, leak or hang"
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
