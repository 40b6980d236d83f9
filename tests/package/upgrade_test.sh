#!/usr/bin/env bash
# An upgrade from the package of the previous commit (scripts/package.sh
# --from previous: HEAD~1, or HEAD if the tree has changes) keeps every
# publication working. With the old package installed: a publication by hand
# (the proxy, the kernel's loopback rewrite and its pinned programs), a
# Podman container through the hook, and a forward of the host (added to the
# conffile); then dpkg -i of this tree's package over it. After the upgrade,
# all three still serve from another "host" and from 127.0.0.1, the conffile
# keeps the forward, the new binary's `check` finds nothing missing, and its
# `down`, `forward rm` and Podman's poststop hook (the new binary too) take
# them down with nothing left behind.
#   upgrade_test.sh BUILD_PORTPUB REPO_DIR [REV]      (root; REV: previous)
# Exits 77 (ctest: skipped, with the reason) when the repository has no
# commit before, as in a shallow clone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$2 rev=${3:-previous}
if [[ -z ${PORTPUB_EXAMPLE_OUTER:-} ]]; then
  # Outside the lab (it writes only under build/): the old package, which
  # scripts/test.sh has made already (then this only packages it again).
  echo "== the package of the commit before: scripts/package.sh --no-build --from $rev"
  status=0
  "$repo/scripts/package.sh" --no-build --from "$rev" || status=$?
  if ((status == 3)); then
    echo "SKIPPED: no commit before this one in $repo (a shallow clone? git fetch --unshallow)"
    exit 77
  fi
  ((status == 0)) || { echo "FAILED: the package of $rev could not be made (above)" >&2; exit 1; }
fi
# shellcheck source=tests/package/package_lab.sh
source "$here/package_lab.sh"
pkg_lab_init "$@"
old=$(echo "$repo"/build/package-from/portpub_*.deb)
new=$(echo "$repo"/build/package/portpub_*.deb)
[[ -f $old && -f $new ]] || lab_fail "expected the two packages, got: $old $new"
before=$(lab_snapshot)

lab_step "The old package: dpkg -i ${old##*/}"
pkg_dpkg -i "$old"
pkg_expect_program_of "$old"
old_version=$(dpkg-query -W -f='${Version}' portpub)

lab_step "Published by the old binary: by hand, and a Podman container through the hook"
pkg_web web "published before the upgrade"
portpub up -p 8080:80/tcp --netns /run/netns/web --subnet 198.51.100.0/24
: >"$LAB/empty.conf"
lab_podman "$LAB/empty.conf"
pkg_podman_run hooked "a container started before the upgrade" --network none \
  --annotation io.portpub.ports=8081:80 --annotation io.portpub.subnet=198.51.100.0/24
lab_step "And a forward of the host's port 8090 to a program on its port 80 (into the conffile)"
pkg_web host "forwarded before the upgrade"
portpub forward -p 8090:80/tcp
expect_all() {
  lab_expect_page ext http://192.0.2.1:8080/ "published before the upgrade"
  lab_expect_page host http://127.0.0.1:8080/ "published before the upgrade"
  lab_expect_page ext http://192.0.2.1:8081/ "a container started before the upgrade"
  lab_expect_page host http://127.0.0.1:8081/ "a container started before the upgrade"
  lab_expect_page ext http://192.0.2.1:8090/ "forwarded before the upgrade"
  lab_expect_page host http://127.0.0.1:8090/ "forwarded before the upgrade"
}
expect_all
portpub ls
proxies_before=$(portpub ls --json | jq -c '[.[] | .proxy.pid] | sort')

lab_step "The upgrade: dpkg -i ${new##*/} over $old_version"
pkg_dpkg -i "$new"
pkg_expect_program_of "$new"
new_version=$(dpkg-query -W -f='${Version}' portpub)
[[ $new_version != "$old_version" ]] || lab_fail "the version did not change ($new_version)"
dpkg --compare-versions "$new_version" gt "$old_version" || lab_fail "$new_version is not above $old_version"
expect_all
grep -q '"8090:80/tcp"' /etc/portpub/forwards.json ||
  lab_fail "the upgrade replaced the conffile: $(cat /etc/portpub/forwards.json)"


lab_step "The new binary reads the old records and pins: ls, check"
portpub ls
[[ $(portpub ls --json | jq -c '[.[] | .proxy.pid] | sort') == "$proxies_before" ]] ||
  lab_fail "the proxies changed: $proxies_before before, $(portpub ls --json | jq -c '[.[] | .proxy.pid]') now"
[[ $(portpub ls --json | jq -c '[.[] | .proxy.running] | unique') == '[true]' ]] ||
  lab_fail "the new binary sees a proxy of the old one as not running: $(portpub ls)"
portpub check || lab_fail "check after the upgrade found something missing (above)"
forwards=$(portpub forward ls)
[[ $forwards == *8090* && $forwards != *"not active"* ]] || lab_fail "forward ls after the upgrade: $forwards"

lab_step "The new binary takes them down: podman rm (its poststop hook), portpub down"
pkg_podman_rm hooked 1
portpub down --netns /run/netns/web
portpub forward rm 8090:80/tcp
lab_expect_gone ext http://192.0.2.1:8080/
lab_expect_gone ext http://192.0.2.1:8081/
lab_expect_gone ext http://192.0.2.1:8090/
pkg_dpkg -P portpub
pkg_expect_gone "$new"
lab_expect_clean "$before"

echo "package upgrade: OK ($old_version to $new_version: two publications and a forward served throughout, read and taken down by the new binary)"
