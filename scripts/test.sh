#!/usr/bin/env bash
# README command (2): install what is missing, build, run the whole test suite;
# then the same suite built with ASan, LeakSanitizer and UBSan (build-asan/),
# and 10 s of fuzzing for each parser of outside input (build-fuzz/).
#   scripts/test.sh [--quick] [ctest options]   (--quick: the plain suite only)
#   scripts/test.sh --repeat N [--cpu-load] [ctest options]
#       the plain suite N times over; then each test that failed in any run,
#       with the runs it failed in (logs in build/repeat/). --cpu-load keeps
#       every core busy with a second job meanwhile, as a loaded machine is.
# Integration tests need root; each one builds its own network namespaces and
# never touches the namespace it was started in.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 repeat=0 cpu_load=0
while (($#)); do
  case $1 in
    --quick) quick=1; shift ;;
    --repeat)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "test: --repeat takes a number of runs, like --repeat 20" >&2; exit 2; }
      repeat=$2; shift 2 ;;
    --cpu-load) cpu_load=1; shift ;;
    *) break ;;
  esac
done
if ((cpu_load && !repeat)); then
  echo "test: --cpu-load goes with --repeat N" >&2
  exit 2
fi
phase() { printf 'test: %s (%d:%02d so far)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); }
scripts/setup.sh
phase "build"
scripts/build.sh
# The package of the commit before this one, which the upgrade test installs
# first: built now, not in the middle of the suite's timed tests. Without
# that commit (a shallow clone), the upgrade test says it is skipped.
scripts/package.sh --no-build --from previous ||
  echo "test: no package of the commit before (above); the upgrade test will say why"
if ((repeat)); then
  # A busy loop a core, niced as nothing else is: a second job that wants all
  # the CPU, as a parallel build would. It ends with this script.
  load_pids=()
  # shellcheck disable=SC2317  # run by the trap
  stop_load() { ((${#load_pids[@]} == 0)) || kill "${load_pids[@]}" 2>/dev/null || true; }
  trap stop_load EXIT
  if ((cpu_load)); then
    for ((i = 0; i < $(nproc); i++)); do
      bash -c 'while :; do :; done' &
      load_pids+=($!)
    done
    echo "test: $(nproc) busy loops beside the suite"
  fi
  rm -rf build/repeat
  mkdir -p build/repeat
  declare -A failed_in=()
  bad_runs=0
  for ((run = 1; run <= repeat; run++)); do
    phase "the suite, run $run of $repeat"
    log=build/repeat/run-$run.log
    rm -f build/Testing/Temporary/LastTestsFailed.log
    if ctest --test-dir build --output-on-failure -j"$(nproc)" "$@" >"$log" 2>&1; then
      echo "run $run: every test passed ($(grep -o 'Total Test time (real) = *[0-9.]* sec' "$log" | grep -o '[0-9.]* sec'))"
      continue
    fi
    bad_runs=$((bad_runs + 1))
    if [[ ! -s build/Testing/Temporary/LastTestsFailed.log ]]; then
      echo "run $run: ctest failed before any test did (see $log)"
      failed_in["(ctest itself)"]+=" $run"
      continue
    fi
    n=0
    while IFS= read -r line; do   # "NUMBER:NAME"
      failed_in["${line#*:}"]+=" $run"
      n=$((n + 1))
    done <build/Testing/Temporary/LastTestsFailed.log
    echo "run $run: $n failed (see $log)"
  done
  phase "done"
  if ((bad_runs == 0)); then
    echo "test: $repeat runs, every test passed in each"
    exit 0
  fi
  echo "test: $bad_runs of $repeat runs had failures; the tests that failed, and in which runs:"
  for name in "${!failed_in[@]}"; do
    printf '  %s: run%s\n' "$name" "${failed_in[$name]}"
  done | sort
  exit 1
fi
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
