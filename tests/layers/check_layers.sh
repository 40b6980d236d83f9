#!/usr/bin/env bash
# The layers keep to their order (see the top-level CMakeLists.txt):
# - for each layer, with the include flags its sources are really compiled
#   with (compile_commands.json), a file that includes one of its own headers
#   compiles, and one that includes a header of a layer it does not use
#   fails, because that header is not on its path;
# - the pure layers (base, plan) and the store include no header of the
#   kernel's netlink libraries either (those are on every path, as system
#   headers): none of their files names one;
# - the pure layer's test binary (plan_tests) links no kernel library, and
#   passes run as an unprivileged user.
#   check_layers.sh CXX SOURCE_DIR COMPILE_COMMANDS PLAN_TESTS LAYER...
set -euo pipefail
cxx=$1 source_dir=$2 commands=$3 plan_tests=$4
shift 4
layers=("$@")
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
failed=0
fail() { echo "FAILED: $*"; failed=1; }

# The -I and -isystem flags of a (non-test) source of LAYER, one a line.
flags_of() {
  jq -r --arg dir "$source_dir/src/$1/" \
    '[.[] | select((.file | startswith($dir)) and (.file | endswith("_test.cpp") | not))][0].command' \
    "$commands" |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^-I/) print $i; else if ($i == "-isystem") { print $i; print $(i + 1) } }'
}
# A header of LAYER: the first of include/LAYER/portpub/.
header_of() { (cd "$source_dir/include/$1" && find portpub -name '*.hpp' | sort | head -n 1); }
compile() {  # LAYER HEADER: the compiler's output; status 0 when it compiled
  local -a flags
  mapfile -t flags < <(flags_of "$1")
  printf '#include "%s"\nint main() { return 0; }\n' "$2" >"$probe/probe.cpp"
  "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" "$probe/probe.cpp" 2>&1
}

for layer in "${layers[@]}"; do
  [[ -n $(flags_of "$layer") ]] || fail "no compile command for a source of src/$layer/"
  own=$(header_of "$layer")
  if ! out=$(compile "$layer" "$own"); then
    fail "$layer cannot include its own $own:"; echo "$out"
  fi
  for other in "${layers[@]}"; do
    # A layer it uses: that layer's headers are on its path.
    flags_of "$layer" | grep -qx -- "-I$source_dir/include/$other" && continue
    theirs=$(header_of "$other")
    if out=$(compile "$layer" "$theirs"); then
      fail "$layer can include $theirs of $other, a layer it does not use"
    elif [[ $out != *"$theirs: No such file or directory"* ]]; then
      fail "$layer including $theirs failed for another reason:"; echo "$out"
    else
      echo "ok: $layer cannot include $theirs ($other)"
    fi
  done
done

# The kernel's libraries by their headers, in the layers that must not use them.
kernel_headers='#include *<(libnftnl/|libmnl/|libnetfilter_|libiptc/|systemd/|netlink/|linux/netfilter|linux/rtnetlink|linux/netlink)'
for layer in base plan store; do
  if hits=$(grep -rnE "$kernel_headers" "$source_dir/src/$layer" "$source_dir/include/$layer"); then
    fail "the $layer layer includes a kernel library's header:"; echo "$hits"
  else
    echo "ok: $layer includes no kernel library's header"
  fi
done

# The pure layer's tests: no kernel library, no root.
if ! needed=$(readelf -d "$plan_tests"); then
  fail "readelf cannot read $plan_tests"
elif grep -E 'NEEDED.*(libnl|libnftnl|libmnl|libnetfilter|libip4tc|libip6tc|libsystemd|libboost)' <<<"$needed"; then
  fail "plan_tests links a library of the kernel or shell layers"
else
  echo "ok: plan_tests links no kernel library"
fi
run_as=()
if [[ $(id -u) -eq 0 ]]; then run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups); fi
if out=$(cd "$probe" && "${run_as[@]}" "$plan_tests" 2>&1); then
  echo "ok: plan_tests passes as uid $("${run_as[@]}" id -u)"
else
  fail "plan_tests as an unprivileged user:"; echo "$out" | tail -n 20
fi
exit "$failed"
