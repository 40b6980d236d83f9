#!/usr/bin/env bash
# README command (1): install what is missing, build, and run the demo: a
# throwaway container namespace serves a page, portpub publishes it, a client
# fetches it through a host address, and everything is torn down again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec scripts/demo-run.sh build/portpub   # in namespaces of its own
