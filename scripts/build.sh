#!/usr/bin/env bash
# Configures and builds into build/ (the binary is build/portpub). Warnings
# are errors here, so that the tree stays clean under -Wall -Wextra -Wpedantic.
# The flags are those Debian gives a package built with every hardening
# option (dpkg-buildflags: stack protector, _FORTIFY_SOURCE, full RELRO and
# bind now), so that the tree the suite tests is the one scripts/package.sh
# packages.
#   scripts/build.sh
#   scripts/build.sh --binary-only SOURCE_DIR BUILD_DIR
#       only the program, of the sources in SOURCE_DIR (another commit's, for
#       scripts/package.sh --from), without tests or benchmarks, in BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source=. build=build extra=() target=()
if [[ ${1:-} == --binary-only ]]; then
  (($# == 3)) || { echo "build: --binary-only takes SOURCE_DIR BUILD_DIR" >&2; exit 2; }
  source=$2 build=$3
  # (without -Werror: another commit's code need not be free of this
  # compiler's warnings under these flags)
  extra=(-DPORTPUB_TESTS=OFF -DPORTPUB_BENCH=OFF -DPORTPUB_WERROR=OFF)
  target=(--target portpub)
fi
command -v dpkg-buildflags >/dev/null ||
  { echo "build: no dpkg-buildflags: install dpkg-dev (scripts/setup.sh does)" >&2; exit 1; }
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxxflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S "$source" -B "$build" -DPORTPUB_WERROR=ON "${extra[@]}" \
  -DCMAKE_CXX_FLAGS="$cxxflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build "$build" -j"$(nproc)" "${target[@]}"
