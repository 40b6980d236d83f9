#!/usr/bin/env bash
# Configures and builds into build/ (the binary is build/portpub). Warnings
# are errors here, so that the tree stays clean under -Wall -Wextra -Wpedantic.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DPORTPUB_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
