#!/usr/bin/env bash
# Runs this directory's bundle with crun in a private lab (../lab.sh): the
# config.json's createRuntime hook publishes 8080 -> 80 of the container, a
# client on another "host" fetches the page through it, and deleting the
# container (poststop) leaves nothing behind.
#   examples/crun/run.sh [PORTPUB]     (root; PORTPUB defaults to build/portpub)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"
lab_hide_hybrid_cgroup2
lab_run_bundle crun "$here"
