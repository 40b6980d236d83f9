#!/usr/bin/env bash
# The layers keep to their order (see the top-level CMakeLists.txt):
# - for each layer, a file that includes one of its own headers compiles with
#   the layer's include path, and one that includes a header of any layer it
#   does not use fails, because that header is not on the path;
# - the pure layer's test binary (plan_tests) links no kernel library, and
#   passes run as an unprivileged user.
#   check_layers.sh CXX SOURCE_DIR PLAN_TESTS LAYER=DIR[:DIR...]...
set -euo pipefail
cxx=$1 source_dir=$2 plan_tests=$3
shift 3
declare -A path=()
layers=()
for arg in "$@"; do
  layers+=("${arg%%=*}")
  path[${arg%%=*}]=${arg#*=}
done
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
failed=0
# A header of LAYER: the first of include/LAYER/portpub/.
header_of() { (cd "$source_dir/include/$1" && find portpub -name "*.hpp" | sort | head -n 1); }
compile() {  # LAYER HEADER: the compiler's output; status 0 when it compiled
  local flags=() dir
  IFS=: read -ra dirs <<<"${path[$1]}"
  for dir in "${dirs[@]}"; do flags+=(-I "$dir"); done
  printf '#include "%s"\nint main() { return 0; }\n' "$2" >"$probe/probe.cpp"
  "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" "$probe/probe.cpp" 2>&1
}
for layer in "${layers[@]}"; do
  own=$(header_of "$layer")
  if ! out=$(compile "$layer" "$own"); then
    echo "FAILED: $layer cannot include its own $own:"; echo "$out"; failed=1
  fi
  for other in "${layers[@]}"; do
    [[ :${path[$layer]}: == *":$source_dir/include/$other:"* ]] && continue  # a layer it uses
    theirs=$(header_of "$other")
    if out=$(compile "$layer" "$theirs"); then
      echo "FAILED: $layer can include $theirs of $other, a layer it does not use"; failed=1
    elif [[ $out != *"$theirs: No such file or directory"* ]]; then
      echo "FAILED: $layer including $theirs failed for another reason:"; echo "$out"; failed=1
    else
      echo "ok: $layer cannot include $theirs ($other)"
    fi
  done
done
# The pure layer: no kernel library, no root.
if readelf -d "$plan_tests" | grep -E 'NEEDED.*(libnl|libnftnl|libmnl|libnetfilter|libboost)'; then
  echo "FAILED: plan_tests links a library of the kernel or shell layers"; failed=1
else
  echo "ok: plan_tests links no kernel library"
fi
run_as=()
if [[ $(id -u) -eq 0 ]]; then run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
if out=$(cd "$probe" && "${run_as[@]}" "$plan_tests" 2>&1); then
  echo "ok: plan_tests passes as uid $( "${run_as[@]}" id -u )"
else
  echo "FAILED: plan_tests as an unprivileged user:"; echo "$out" | tail -n 20; failed=1
fi
exit "$failed"
