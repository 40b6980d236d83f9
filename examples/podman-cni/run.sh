#!/usr/bin/env bash
# Podman's CNI backend with portpub as the network's plugin, in a private lab
# (../lab.sh): this directory's containers.conf and portpub.conflist, as they
# are, put where a host keeps them (the [network] table in containers.conf,
# the conflist in /etc/cni/net.d, portpub linked into /usr/local/lib/cni),
# then `podman run --network portpub -p 8080:80`; a client on another "host"
# fetches the page, and `podman rm` (CNI DEL) leaves nothing behind.
#   examples/podman-cni/run.sh [PORTPUB]     (root; PORTPUB defaults to build/portpub)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"

lab_step "Install: the conflist in /etc/cni/net.d, portpub in /usr/local/lib/cni"
mkdir -p /etc/cni/net.d /usr/local/lib/cni
cp "$here/portpub.conflist" /etc/cni/net.d/
ln -sfn /usr/local/sbin/portpub /usr/local/lib/cni/portpub
lab_podman "$here/containers.conf"
page="served by podman's CNI backend through portpub"
lab_rootfs "$LAB/web" "$page"
before=$(lab_snapshot)
lab_on_exit "${PODMAN[*]} rm -f -t 0 web"

lab_step "podman run --network portpub -p 8080:80 ..."
"${PODMAN[@]}" run -d --name web "${PODMAN_LIMITS[@]}" --runtime runc --network portpub -p 8080:80 \
  --rootfs "$LAB/web/rootfs" /bin/httpd -f -p 80 -h /www </dev/null >>"$PODMAN_LOG" 2>&1 ||
  lab_fail "podman run failed: $(cat "$PODMAN_LOG")"
"${PODMAN[@]}" port web
"$PORTPUB" ls
# (the listing first: under pipefail, grep -q quitting early would fail nft)
pub4=$(nft list map inet portpub pub4)
grep -q 'tcp . 8080' <<<"$pub4" ||
  lab_fail "no map element of 8080 in portpub's table: $pub4"

lab_step "Fetch the page through the published port"
lab_expect_page ext http://192.0.2.1:8080/ "$page"
lab_expect_page host http://127.0.0.1:8080/ "$page"

lab_step "podman rm: CNI DEL takes it all down"
"${PODMAN[@]}" rm -f -t 0 web >>"$PODMAN_LOG" 2>&1 || lab_fail "podman rm failed: $(cat "$PODMAN_LOG")"
lab_wait 100 lab_is_clean "$before" || true
lab_expect_gone ext http://192.0.2.1:8080/
lab_expect_clean "$before"

echo "example podman-cni: OK (page served through 192.0.2.1:8080 and 127.0.0.1:8080, nothing left after podman rm)"
