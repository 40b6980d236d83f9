# shellcheck shell=bash
# The private lab every examples/*/run.sh runs in; sourced, not run. It
# builds nothing outside the namespaces it makes:
#
#   ext (192.0.2.2/24) --veth-- host: ext0 192.0.2.1/24 (the script's own namespace)
#                                     containers on 198.51.100.0/24
#
# lab_init ARGS re-executes the calling script under `unshare --net --mount`
# unless it already runs there, and refuses the machine's own namespaces.
# In the private mount namespace /run is a tmpfs (own /run/netns,
# /run/portpub), and /etc, /usr/local and /var/lib (or the directories
# LAB_OVERLAYS names) are overlays whose writes stay in it: the example
# files are put where a user would put them (/usr/local/sbin/portpub is the
# portpub under test, /etc/portpub, /etc/cni/net.d), and the machine sees
# none of it.

# shellcheck source=scripts/own-cgroup.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/own-cgroup.sh"

lab_fail() {
  echo "${0##*/}: FAILED: $*" >&2
  exit 1
}

lab_step() { printf '\n== %s\n' "$*"; }

# The portpub under test: $1, else $PORTPUB, else build/portpub of this
# repository, else an installed /usr/local/sbin/portpub.
lab_portpub() {
  local candidate=${1:-${PORTPUB:-}}
  if [[ -z $candidate ]]; then
    candidate=$(dirname "${BASH_SOURCE[0]}")/../build/portpub
    [[ -x $candidate ]] || candidate=/usr/local/sbin/portpub
  fi
  [[ -x $candidate ]] || lab_fail "no portpub at $candidate (give its path as the first argument)"
  realpath "$candidate"
}

lab_init() {
  local portpub
  portpub=$(lab_portpub "${1:-}")
  local net mnt
  net=$(readlink /proc/self/ns/net)
  mnt=$(readlink /proc/self/ns/mnt)
  if [[ -z ${PORTPUB_EXAMPLE_OUTER:-} ]]; then
    # Started by hand or by ctest: again, in namespaces of its own. A pid
    # namespace too, so that whatever the lab started (detached proxies,
    # servers) dies with it even when it is killed, as ctest does on a
    # timeout, before its EXIT trap can run.
    [[ $(id -u) -eq 0 ]] || lab_fail "run as root (it makes namespaces, links and nftables rules)"
    own_cgroup_sweep portpub-example
    export PORTPUB_EXAMPLE_CGROUP=portpub-example-$$
    exec env PORTPUB_EXAMPLE_OUTER="$net $mnt $(readlink /proc/1/ns/net /proc/1/ns/mnt 2>/dev/null || true)" \
      unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc \
      "$BASH" "$0" "$portpub" "${@:2}"
  fi
  # Never the namespaces it was started in, nor the machine's (pid 1's, when
  # /proc/1 could be read there).
  local outer
  for outer in $PORTPUB_EXAMPLE_OUTER; do
    [[ $outer != "$net" && $outer != "$mnt" ]] ||
      lab_fail "refusing to run in the machine's own network or mount namespace ($outer)"
  done
  PORTPUB=$portpub

  mount -t tmpfs -o mode=0755 tmpfs /run
  own_cgroup_enter "$PORTPUB_EXAMPLE_CGROUP"  # its own cgroup and bpffs (scripts/own-cgroup.sh)
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm   # Podman's lock memory
  mkdir -p /run/netns /run/lab
  LAB=/run/lab
  local dir
  for dir in ${LAB_OVERLAYS:-/etc /usr/local /var/lib}; do
    local upper=$LAB/overlay${dir//\//-}
    mkdir -p "$upper/upper" "$upper/work"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$upper/upper,workdir=$upper/work" "$dir"
  done
  mkdir -p /usr/local/sbin
  [[ $PORTPUB == /usr/local/sbin/portpub ]] || ln -sfn "$PORTPUB" /usr/local/sbin/portpub

  LAB_PIDS=()
  LAB_CLEANUP=()
  trap lab_exit EXIT

  ip link set lo up
  lab_peer ext ext0 192.0.2.1/24 192.0.2.2/24
  ip -n ext route add default via 192.0.2.1
  echo "lab: host 192.0.2.1 (this namespace), ext 192.0.2.2; portpub $PORTPUB"
}

# Runs at exit, success or not: the clean-up commands registered (containers
# a failed run left), then whatever is left of this lab's processes.
# lab_peer NAME HOST_IF HOST_CIDR PEER_CIDR: a namespace NAME joined to this
# one by a veth pair (HOST_IF here, eth0 there), both ends addressed and up.
lab_peer() {
  local name=$1 host_if=$2 host_cidr=$3 peer_cidr=$4
  ip netns add "$name"
  ip link add "$host_if" type veth peer name eth0 netns "$name"
  ip addr add "$host_cidr" dev "$host_if"
  ip link set "$host_if" up
  ip -n "$name" link set lo up
  ip -n "$name" addr add "$peer_cidr" dev eth0
  ip -n "$name" link set eth0 up
}

lab_exit() {
  local status=$? cmd pid
  for cmd in "${LAB_CLEANUP[@]}"; do
    (eval "$cmd") >/dev/null 2>&1 || true
  done
  for pid in "${LAB_PIDS[@]}" $(lab_proxies); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  own_cgroup_leave
  exit "$status"
}

lab_on_exit() { LAB_CLEANUP+=("$1"); }

# Runs ARGV in the background in namespace NS ("host" for this one), killed at exit.
lab_spawn() {
  local ns=$1
  shift
  if [[ $ns == host ]]; then
    "$@" </dev/null >>"$LAB/spawned.log" 2>&1 &
  else
    ip netns exec "$ns" "$@" </dev/null >>"$LAB/spawned.log" 2>&1 &
  fi
  LAB_PIDS+=($!)
}

# Polls CMD... until it succeeds: at most TRIES times, 100 ms apart. Says so
# on stderr when it runs out.
lab_wait() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "${0##*/}: waited $((tries / 10)).$((tries % 10)) s for '$*', in vain" >&2
  return 1
}

# The page at URL from namespace NS ("host" or "ext"); the container may not
# listen yet when its runtime returns, so at most 30 tries, 3 s each at most.
lab_fetch() {
  local ns=$1 url=$2 tries=${3:-30} i
  local curl=(curl -sS --max-time 3 "$url")
  [[ $ns == host ]] || curl=(ip netns exec "$ns" "${curl[@]}")
  for ((i = 0; i < tries; i++)); do
    "${curl[@]}" 2>>"$LAB/curl.log" && return 0
    sleep 0.2
  done
  return 1
}

# Fails unless the page at URL, from NS, is PAGE.
lab_expect_page() {
  local ns=$1 url=$2 page=$3 got
  got=$(lab_fetch "$ns" "$url") ||
    lab_fail "nothing at $url from $ns in 30 tries, 3 s each at most: $(tail -n 1 "$LAB/curl.log")"
  [[ $got == "$page" ]] || lab_fail "$url from $ns: expected '$page', got '$got'"
  echo "from $ns: $url -> $got"
}

# Fails if URL still serves anything, from NS (one try).
lab_expect_gone() {
  local ns=$1 url=$2
  if lab_fetch "$ns" "$url" 1 >/dev/null; then lab_fail "$url still answers from $ns"; fi
  echo "from $ns: $url -> nothing (as expected)"
}

# The pids of the portpub processes (proxies) in this network namespace.
lab_proxies() {
  local net pid exe
  net=$(readlink /proc/self/ns/net)
  for pid in /proc/[0-9]*; do
    exe=$(readlink "$pid/exe" 2>/dev/null) || continue
    [[ ${exe##*/} == portpub* && $(readlink "$pid/ns/net" 2>/dev/null) == "$net" ]] &&
      echo "${pid#/proc/}"
  done
  true
}

# What a user looks at to see that nothing is left in the host namespace:
# links, addresses, routes, the nftables ruleset, forwarding, portpub's
# records and proxies. (Kernel-derived details left out: link state,
# carrier, IPv6 link-local addresses and routes.)
lab_snapshot() {
  ip -o link show | sed 's/^[0-9]*: //; s/ state [A-Z]*//; s/,LOWER_UP//; s/NO-CARRIER,//; s/ qdisc [a-z_]*//; s/ qlen [0-9]*//'
  echo --
  ip -o addr show | grep -v 'inet6 fe80::' | sed 's/^[0-9]*: //; s/valid_lft.*//; s/ tentative//'
  echo --
  ip route show table all | grep -v -e '^fe80::' -e 'ff00::/8' -e '^local fe80::' -e '^multicast' |
    sed 's/ linkdown//'
  echo --
  nft list ruleset
  echo --
  echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
  echo "ipv6 forwarding $(cat /proc/sys/net/ipv6/conf/all/forwarding)"
  echo --
  ls -A /run/portpub/containers 2>/dev/null || true
  ls /run/portpub/host.json /run/portpub/forwards.json 2>/dev/null || true
  echo "-- proxies: $(lab_proxies | wc -l)"
}

# The snapshot without the lines matching IGNORE (an extended regular
# expression), if given.
lab_snapshot_but() {
  if [[ -n ${1:-} ]]; then lab_snapshot | grep -Ev -- "$1" || true; else lab_snapshot; fi
}

lab_is_clean() { [[ $(lab_snapshot_but "${2:-}") == "$1" ]]; }

# Fails unless the snapshot now equals BEFORE, showing what differs; lines
# matching IGNORE, if given, are left out (BEFORE must leave them out too).
lab_expect_clean() {
  local before=$1 after
  after=$(lab_snapshot_but "${2:-}")
  if [[ $after != "$before" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    lab_fail "something was left behind (diff above: < before, > after)"
  fi
  echo "nothing left: links, addresses, routes, ruleset, forwarding, records and proxies as before"
}

# DIR/rootfs: busybox (with the libraries it needs, if it is not the static
# build) serving /www/index.html with PAGE.
lab_rootfs() {
  local root=$1/rootfs busybox d
  busybox=$(command -v busybox) || lab_fail "busybox is not installed (scripts/setup.sh)"
  for d in bin www proc dev sys etc tmp; do mkdir -p "$root/$d"; done
  cp "$busybox" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/httpd"
  ldd "$busybox" 2>/dev/null | grep -o '/[^ ]*' | xargs -r -I{} cp --parents {} "$root" || true
  echo "$2" >"$root/www/index.html"
}

# crun refuses a cgroup v1 host whose cgroup2 mount holds a controller
# ("hybrid mode"); unmounting that cgroup2 in this private mount namespace
# leaves plain v1, as on older hosts. The machine never sees it.
lab_hide_hybrid_cgroup2() {
  if [[ -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
    umount -l /sys/fs/cgroup/unified
  fi
}

# Podman confined to the lab: storage, run root and temporary files under
# $LAB/podman, containers.conf = the lab's [engine] table + FILES... (the
# example's own snippets, as they are). Sets PODMAN (the command).
lab_podman() {
  local dir=$LAB/podman
  mkdir -p "$dir/tmp"
  {
    printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "%s"\n\n' "$dir/tmp"
    cat "$@"
  } >"$dir/containers.conf"
  # shellcheck disable=SC2034  # PODMAN, PODMAN_LOG, PODMAN_LIMITS: for the caller
  PODMAN=(env CONTAINERS_CONF="$dir/containers.conf"
    podman --root "$dir/storage" --runroot "$dir/runroot" --storage-driver vfs)
  # shellcheck disable=SC2034
  PODMAN_LOG=$dir/log
  # This sandbox refuses the raising of RLIMIT_NOFILE and RLIMIT_NPROC to
  # Podman's defaults; lower values are always allowed.
  # shellcheck disable=SC2034
  PODMAN_LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
}

# lab_run_bundle RUNTIME DIR: the runc and crun examples. DIR's config.json,
# as it is, in a bundle with a busybox root filesystem; `RUNTIME run -d`
# (the createRuntime hook publishes 8080 -> 80); the page through
# 192.0.2.1:8080 from ext and through 127.0.0.1:8080; `RUNTIME kill` and
# `delete` (the poststop hook); then nothing may be left.
lab_run_bundle() {
  local runtime=$1 dir=$2
  lab_step "A bundle: $dir/config.json, as it is, and a busybox root filesystem"
  local bundle=$LAB/bundle page="served by $runtime through portpub" before
  mkdir -p "$bundle"
  cp "$dir/config.json" "$bundle/config.json"
  lab_rootfs "$bundle" "$page"
  before=$(lab_snapshot)
  local rt=("$runtime" --root "$LAB/$runtime") log=$LAB/$runtime.log
  # The container's id names its cgroup (config.json sets no cgroupsPath):
  # one id per runtime, so that the runc and crun examples, run at once,
  # never meet in one cgroup.
  local id=$runtime-web
  lab_on_exit "${rt[*]} delete -f $id"

  lab_step "$runtime run -d $id: the createRuntime hook publishes io.portpub.ports=8080:80"
  "${rt[@]}" run -d --bundle "$bundle" "$id" </dev/null >>"$log" 2>&1 ||
    lab_fail "$runtime run failed: $(cat "$log")"
  "$PORTPUB" ls

  lab_step "Fetch the page through the published port"
  lab_expect_page ext http://192.0.2.1:8080/ "$page"
  lab_expect_page host http://127.0.0.1:8080/ "$page"

  lab_step "$runtime kill, $runtime delete: the poststop hook takes it all down"
  "${rt[@]}" kill "$id" KILL
  lab_wait 100 bash -c "${rt[*]} state $id | grep -q '\"stopped\"'" || lab_fail "$id did not stop"
  "${rt[@]}" delete "$id" >>"$log" 2>&1 || lab_fail "$runtime delete failed: $(cat "$log")"
  lab_expect_gone ext http://192.0.2.1:8080/
  lab_expect_clean "$before"

  echo "example $runtime: OK (page served through 192.0.2.1:8080 and 127.0.0.1:8080, nothing left after delete)"
}
