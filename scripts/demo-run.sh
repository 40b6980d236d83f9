#!/usr/bin/env bash
# The demo itself, in a private network and mount namespace: started anywhere
# else, it runs itself again under `unshare --net --mount --pid`, and it
# refuses to run in the namespaces it was started in or in pid 1's.
#   scripts/demo-run.sh [PORTPUB]      (scripts/demo.sh builds, then runs it)
set -euo pipefail
portpub=$(realpath "${1:-build/portpub}")

# shellcheck source=scripts/own-cgroup.sh
source "$(dirname "$0")/own-cgroup.sh"

net=$(readlink /proc/self/ns/net) mnt=$(readlink /proc/self/ns/mnt)
if [[ -z ${PORTPUB_DEMO_OUTER:-} ]]; then
  own_cgroup_sweep portpub-demo
  export PORTPUB_DEMO_CGROUP=portpub-demo-$$
  # pid 1's namespaces too, read here: in the new pid namespace pid 1 is us.
  exec env PORTPUB_DEMO_OUTER="$net $mnt $(readlink /proc/1/ns/net /proc/1/ns/mnt 2>/dev/null || true)" \
    unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc "$0" "$portpub"
fi
for outer in $PORTPUB_DEMO_OUTER; do
  if [[ -z $net || -z $mnt || $net == "$outer" || $mnt == "$outer" ]]; then
    echo "demo-run: refusing to run in the network or mount namespace it was started in" >&2
    exit 1
  fi
done
mount -t tmpfs tmpfs /run            # our own /run/netns and /run/portpub
own_cgroup_enter "$PORTPUB_DEMO_CGROUP"   # our own cgroup and bpffs (scripts/own-cgroup.sh)
www=$(mktemp -d -p /run)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$www"; own_cgroup_leave' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "A private 'host' with an address on 192.0.2.0/24 and another host beside it"
ip link set lo up
ip netns add client
ip link add ext0 type veth peer name eth0 netns client
ip addr add 192.0.2.1/24 dev ext0 && ip link set ext0 up
ip -n client addr add 192.0.2.2/24 dev eth0 && ip -n client link set eth0 up
ip -n client link set lo up && ip -n client route add default via 192.0.2.1
echo "host address 192.0.2.1, client 192.0.2.2"

step "A container namespace with an HTTP server on port 80"
ip netns add web
echo "Hello from the container behind portpub" > "$www/index.html"
ip netns exec web busybox httpd -f -p 80 -h "$www" &
listening=0
for _ in $(seq 50); do   # until it listens (at most 5 s)
  [[ -n $(ip netns exec web ss -Hltn 'sport = :80') ]] && { listening=1; break; }
  sleep 0.1
done
((listening)) || { echo "demo: busybox httpd did not listen on port 80 within 5 s" >&2; exit 1; }
echo "busybox httpd in /run/netns/web"

step "Publish it: host port 8080 -> container port 80"
show "$portpub" -p 8080:80/tcp --netns /run/netns/web --subnet 198.51.100.0/24
show "$portpub" ls

step "Fetch the page through a host address, and through loopback"
show curl -sS --max-time 5 http://192.0.2.1:8080/
echo "(127.0.0.1: the kernel rewrites the connection to the container, no proxy between:)"
show curl -sS --max-time 5 http://127.0.0.1:8080/
echo "(from the other host:)"
show ip netns exec client curl -sS --max-time 5 http://192.0.2.1:8080/

step "The rules that did it: one map element per port, no per-port rule"
show nft list map inet portpub pub4

step "Tear down"
show "$portpub" down --netns /run/netns/web
left=$(ip -br link | grep -E 'portpub0|pp[0-9a-f]{8}' || true)
rules=$(nft list ruleset)
if [[ -n "$left$rules" ]]; then
  echo "demo: something was left behind: $left $rules" >&2
  exit 1
fi
echo "no bridge, no veth, no rules left"
