#!/usr/bin/env bash
# Fails when a directory of examples/ has no run.sh registered as a ctest
# (tests/CMakeLists.txt, "example: NAME"), or a registered one has no
# executable run.sh. Arguments: the examples directory, then the registered names.
set -euo pipefail
examples=$1
shift
registered=" $* "
status=0
for dir in "$examples"/*/; do
  name=$(basename "$dir")
  if [[ ! -x $dir/run.sh ]]; then
    echo "examples/$name has no executable run.sh" >&2
    status=1
  fi
  if [[ $registered != *" $name "* ]]; then
    echo "examples/$name/run.sh is not registered in tests/CMakeLists.txt" >&2
    status=1
  fi
done
for name in "$@"; do
  [[ -d $examples/$name ]] || { echo "registered example $name has no directory examples/$name" >&2; status=1; }
done
((status == 0)) && echo "every examples/*/ directory has a registered run.sh: $*"
exit "$status"
