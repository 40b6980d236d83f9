# shellcheck shell=bash
# Sourced by scripts/demo-run.sh and examples/lab.sh, which run in private
# network, mount and pid namespaces. portpub attaches its socket programs
# (loopback rewritten in the kernel) at the root of the cgroup v2 hierarchy
# that /proc/self/mountinfo shows, and pins them in /sys/fs/bpf. Here they get
# a child cgroup of the run's own instead: made under the cgroup the run is in
# (so that it stays under its job's limits), this shell moved into it, and
# bound over the hierarchy's mount point in the private mount namespace; and
# a bpffs of the run's own. The machine's root cgroup and its bpffs are never
# touched.

# The cgroup v2 directory this shell is in; nothing without cgroup v2.
own_cgroup_parent() {
  local root
  root=$(findmnt -n -t cgroup2 -o TARGET | head -1)
  [[ -n $root ]] || return 0
  echo "$root$(awk -F: '$1 == "0" && $3 != "/" {print $3}' /proc/self/cgroup)"
}

# In the namespace the run started in (it sees the real pids): removes the
# cgroups runs of PREFIX left when they were killed.
own_cgroup_sweep() {
  local parent dir pid
  parent=$(own_cgroup_parent)
  [[ -n $parent ]] || return 0
  for dir in "$parent/$1"-*; do
    [[ -d $dir ]] || continue
    pid=${dir##*-}
    kill -0 "$pid" 2>/dev/null || find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

OWN_CGROUP_ROOT="" OWN_CGROUP_PARENT="" OWN_CGROUP=""
# NAME: PREFIX-PID, PID that of the process that started the run.
own_cgroup_enter() {
  OWN_CGROUP_ROOT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
  mount -t bpf bpf /sys/fs/bpf
  [[ -n $OWN_CGROUP_ROOT ]] || return 0  # no cgroup v2: portpub serves loopback with its proxy
  OWN_CGROUP_PARENT=$(own_cgroup_parent)
  OWN_CGROUP=$OWN_CGROUP_PARENT/$1
  mkdir "$OWN_CGROUP"
  echo $$ >"$OWN_CGROUP/cgroup.procs"
  mount --bind "$OWN_CGROUP" "$OWN_CGROUP_ROOT"
}

# At exit, once the run's other processes are gone: the cgroup goes.
own_cgroup_leave() {
  [[ -n $OWN_CGROUP ]] || return 0
  umount -l /sys/fs/bpf 2>/dev/null || true
  umount "$OWN_CGROUP_ROOT" 2>/dev/null || true
  echo $$ >"$OWN_CGROUP_PARENT/cgroup.procs" 2>/dev/null || true
  local _
  for _ in $(seq 50); do  # at most 5 s for the last processes to exit
    # Podman leaves a cgroup of its own below (libpod_parent): deepest first.
    find "$OWN_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ -d $OWN_CGROUP ]] || return 0
    sleep 0.1
  done
  echo "${0##*/}: could not remove cgroup $OWN_CGROUP" >&2
}
