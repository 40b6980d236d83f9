# shellcheck shell=bash
# What the package tests share; sourced. The lab of examples/lab.sh (private
# network, mount and pid namespaces, its own cgroup and bpffs) with /etc, /usr
# and /var as overlays: dpkg's database, the package's files and whatever its
# maintainer scripts write stay in the lab's mount namespace, and the
# machine's own dpkg never sees them. dpkg -i and -P run for real there.
#   pkg_lab_init BUILD_PORTPUB [ARGS]   as lab_init, then the lab made ready for dpkg

# (/bin, /sbin and /lib are links into /usr on Debian 12; where one is a
# directory of its own, it is an overlay too, so that dpkg writes nothing of
# the machine's.)
LAB_OVERLAYS="/etc /usr /var"
for dir in /bin /sbin /lib /lib64; do
  [[ -d $dir && ! -L $dir ]] && LAB_OVERLAYS+=" $dir"
done
export LAB_OVERLAYS
# shellcheck source=examples/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../examples/lab.sh"

pkg_lab_init() {
  lab_init "$@"
  # A portpub the machine has installed from a package (as the README's
  # Install section does) is purged in the lab, so that what is installed
  # here is this package, not a no-op over the same version.
  if [[ $(dpkg-query -W -f='${db:Status-Status}' portpub 2>/dev/null) == installed ]]; then
    echo "lab: purging the machine's portpub package, in the lab only"
    dpkg -P portpub >>"$LAB/dpkg.log" 2>&1 || lab_fail "dpkg -P of the machine's portpub, in the lab, failed"
  fi
  # The lab links the build's portpub at /usr/local/sbin, ahead of /usr/sbin
  # in PATH: here the package's portpub is the one under test, and the
  # maintainer scripts must find it and no other.
  rm -f /usr/local/sbin/portpub
  # man-db's trigger would rebuild the whole manual index at each install
  # (tens of seconds); without this file it leaves it.
  rm -f /var/lib/man-db/auto-update
  export DEBIAN_FRONTEND=noninteractive
  PKG_LOG=$LAB/dpkg.log
}

# dpkg ARGS, its output in $PKG_LOG and on stdout; fails the test on failure.
pkg_dpkg() {
  echo "\$ dpkg $*"
  dpkg "$@" 2>&1 | tee -a "$PKG_LOG" || lab_fail "dpkg $* failed"
}

# The files (not directories) of the .deb DEB, as absolute paths.
pkg_files() {
  dpkg-deb --fsys-tarfile "$1" | tar -t | sed 's,^\.,,' | grep -v '/$' | sort
}

# NAME ("host" for the lab's own namespace, else a new namespace NAME)
# serving PAGE over HTTP on port 80 (busybox httpd).
pkg_web() {
  local name=$1 page=$2 in=()
  if [[ $name != host ]]; then
    ip netns add "$name"
    ip -n "$name" link set lo up
    in=(ip netns exec "$name")
  fi
  mkdir -p "$LAB/www-$name"
  echo "$page" >"$LAB/www-$name/index.html"
  lab_spawn "$name" busybox httpd -f -p 80 -h "$LAB/www-$name"
  lab_wait 50 "${in[@]}" bash -c "ss -Hltn 'sport = :80' | grep -q ." ||
    lab_fail "httpd of $name does not listen on port 80"
}

# Fails unless /usr/sbin/portpub is DEB's program, byte for byte.
pkg_expect_program_of() {
  cmp -s /usr/sbin/portpub <(dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/sbin/portpub) ||
    lab_fail "/usr/sbin/portpub is not the program of ${1##*/}"
}

# pkg_podman_run NAME PAGE PODMAN_RUN_OPTIONS...: a container NAME serving
# PAGE over HTTP on port 80 (busybox), under the lab's Podman (lab_podman
# first); removed at exit if the test fails before.
pkg_podman_run() {
  local name=$1 page=$2
  shift 2
  lab_rootfs "$LAB/$name" "$page"
  lab_on_exit "${PODMAN[*]} rm -f -t 0 $name"
  "${PODMAN[@]}" run -d --name "$name" "${PODMAN_LIMITS[@]}" --runtime runc "$@" \
    --rootfs "$LAB/$name/rootfs" /bin/httpd -f -p 80 -h /www </dev/null >>"$PODMAN_LOG" 2>&1 ||
    lab_fail "podman run $name failed: $(cat "$PODMAN_LOG")"
}

# pkg_podman_rm NAME LEFT: podman rm -f NAME, then fails unless the hook or
# the CNI plugin Podman runs takes its publication down, leaving LEFT.
pkg_podman_rm() {
  local name=$1 left=$2
  "${PODMAN[@]}" rm -f -t 0 "$name" >>"$PODMAN_LOG" 2>&1 || lab_fail "podman rm $name failed: $(cat "$PODMAN_LOG")"
  # (it runs just after rm returns)
  lab_wait 100 bash -c "[[ \$(portpub ls --json | jq length) == $left ]]" ||
    lab_fail "podman rm $name left its publication: $(portpub ls)"
}

# Fails unless dpkg knows no package portpub (removed and purged), no file of
# DEB is on disk, /etc/portpub is gone, and dpkg keeps nothing of it.
pkg_expect_gone() {
  local deb=$1 f left=() status
  status=$(dpkg-query -W -f='${db:Status-Status}' portpub 2>/dev/null || true)
  [[ -z $status || $status == not-installed ]] || lab_fail "dpkg still knows portpub: $status"
  while read -r f; do
    [[ -e $f || -L $f ]] && left+=("$f")
  done < <(pkg_files "$deb")
  ((${#left[@]} == 0)) || lab_fail "files of the package left after purge: ${left[*]}"
  [[ ! -e /etc/portpub ]] || lab_fail "/etc/portpub left after purge: $(ls -A /etc/portpub)"
  local info
  info=$(ls /var/lib/dpkg/info/portpub.* 2>/dev/null || true)
  [[ -z $info ]] || lab_fail "dpkg's own files of portpub left: $info"
  echo "purged: no file of the package, no /etc/portpub, nothing in dpkg's database"
}
