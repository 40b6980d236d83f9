#!/usr/bin/env bash
# Soak run, in private namespaces: up/down cycles of one container while
# another container's proxy carries loopback traffic; prints memory and
# descriptor figures every tenth of the run and what is left at the end.
#   scripts/soak.sh [--cycles N]     (default 1,000: a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
exec build/tests/portpub-soak "$@"
