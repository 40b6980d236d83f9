#!/usr/bin/env bash
# The package installed, used, removed and purged, with dpkg, in a private
# lab (package_lab.sh): the installed binary publishes a port by hand (from
# another "host" and from 127.0.0.1); Podman runs a container with the
# packaged hook and no --hooks-dir; Podman's CNI backend finds the plugin in
# /usr/lib/cni with no plugin directory configured. Removal names the
# publication that stays live and leaves it serving; purge removes
# /etc/portpub, keeps the state while a publication is live and removes it
# once none is; nothing of the package is left.
#   install_test.sh BUILD_PORTPUB REPO_DIR      (root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/package/package_lab.sh
source "$here/package_lab.sh"
pkg_lab_init "$@"
repo=$2
deb=$(echo "$repo"/build/package/portpub_*.deb)
[[ -f $deb ]] || lab_fail "no package in $repo/build/package (scripts/package.sh makes it)"
build_portpub=$PORTPUB
before=$(lab_snapshot)

lab_step "apt-get install ./${deb##*/}, as the README says (its dependencies are installed: no download)"
echo "\$ apt-get install $deb"
apt-get install -y -q --no-install-recommends "$deb" </dev/null 2>&1 | tee -a "$PKG_LOG" ||
  lab_fail "apt-get install failed"
[[ $(dpkg-query -W -f='${Status}' portpub) == "install ok installed" ]] || lab_fail "not installed"
pkg_expect_program_of "$deb"
[[ $(command -v portpub) == /usr/sbin/portpub ]] || lab_fail "portpub in PATH is $(command -v portpub)"
portpub version
[[ $(man -w portpub) == /usr/share/man/man8/portpub.8.gz ]] || lab_fail "man -w portpub: $(man -w portpub)"
completion=$(bash -c 'source /usr/share/bash-completion/completions/portpub && complete -p portpub')
[[ $completion == *_portpub* ]] || lab_fail "the completion does not register: $completion"
[[ $(cat /etc/portpub/forwards.json) == *'"forwards": []'* ]] || lab_fail "forwards.json: $(cat /etc/portpub/forwards.json)"
[[ $(portpub forward apply) == "no forwards" ]] || lab_fail "forward apply of the packaged forwards.json"
echo "installed: /usr/sbin/portpub runs, man and the completion find theirs, forwards.json applies"

lab_step "The installed binary publishes by hand: portpub up -p 8080:80 --netns /run/netns/web"
pkg_web web "served through the installed portpub"
portpub up -p 8080:80/tcp --netns /run/netns/web --subnet 198.51.100.0/24
lab_expect_page ext http://192.0.2.1:8080/ "served through the installed portpub"
lab_expect_page host http://127.0.0.1:8080/ "served through the installed portpub"

lab_step "Podman with the packaged hook, and no --hooks-dir"
: >"$LAB/empty.conf"
lab_podman "$LAB/empty.conf"
page="served by podman through the packaged hook"
pkg_podman_run hooked "$page" --network none \
  --annotation io.portpub.ports=8081:80 --annotation io.portpub.subnet=198.51.100.0/24
lab_expect_page ext http://192.0.2.1:8081/ "$page"
pkg_podman_rm hooked 1
lab_expect_gone ext http://192.0.2.1:8081/

lab_step "Podman's CNI backend finds the plugin in /usr/lib/cni (no plugin directory configured)"
for dir in /usr/local/libexec/cni /usr/libexec/cni /usr/local/lib/cni /opt/cni/bin; do
  [[ ! -e $dir/portpub ]] || lab_fail "$dir/portpub exists: the test would not show /usr/lib/cni's"
done
mkdir -p /etc/cni/net.d
cp "$repo/examples/podman-cni/portpub.conflist" /etc/cni/net.d/
printf '[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "/etc/cni/net.d"\n' >"$LAB/cni.conf"
lab_podman "$LAB/cni.conf"
page="served by podman's CNI backend through the packaged plugin"
pkg_podman_run cni "$page" --network portpub -p 8082:80
lab_expect_page ext http://192.0.2.1:8082/ "$page"
pkg_podman_rm cni 1
lab_expect_gone ext http://192.0.2.1:8082/

lab_step "dpkg -r: the publication of web stays live, and the removal names it"
# With a source install's portpub first in PATH (a stand-in that says so),
# the removal still asks the package's own.
mkdir -p /usr/local/sbin
printf '#!/bin/sh\necho "the stand-in ran" >>%s/stand-in.log\nexit 1\n' "$LAB" >/usr/local/sbin/portpub
chmod +x /usr/local/sbin/portpub
PATH=/usr/local/sbin:$PATH pkg_dpkg -r portpub
rm /usr/local/sbin/portpub
[[ ! -e $LAB/stand-in.log ]] || lab_fail "the removal ran /usr/local/sbin/portpub, not the package's"
grep -q 'publications stay after the removal' "$PKG_LOG" || lab_fail "the removal did not say a publication stays"
grep -qE '^web +198\.51\.100\.' "$PKG_LOG" || lab_fail "the removal did not name web's publication"
[[ ! -e /usr/sbin/portpub ]] || lab_fail "/usr/sbin/portpub is still there"
[[ -f /etc/portpub/forwards.json ]] || lab_fail "removal (not purge) took the conffile"
lab_expect_page ext http://192.0.2.1:8080/ "served through the installed portpub"
lab_expect_page host http://127.0.0.1:8080/ "served through the installed portpub"

lab_step "dpkg -P: /etc/portpub goes; the state stays while web's publication is live"
pkg_dpkg -P portpub
[[ ! -e /etc/portpub ]] || lab_fail "/etc/portpub is still there after purge"
[[ -n $(ls -A /run/portpub/containers) ]] || lab_fail "purge removed the record of a live publication"
grep -q '/run/portpub kept' "$PKG_LOG" || lab_fail "the purge did not say why it kept /run/portpub"
lab_expect_page ext http://192.0.2.1:8080/ "served through the installed portpub"

lab_step "Installed again, it takes web down; then a purge with nothing live removes the state"
pkg_dpkg -i "$deb"
pkg_expect_program_of "$deb"
portpub down --netns /run/netns/web
lab_expect_gone ext http://192.0.2.1:8080/
pkg_dpkg -P portpub
[[ ! -e /run/portpub ]] || lab_fail "/run/portpub left after purge with nothing live: $(ls -AR /run/portpub)"
pkg_expect_gone "$deb"
# The lab's own portpub (the build's) reads the same default state directory:
# it sees nothing left either.
[[ $("$build_portpub" ls --json) == "[]" ]] || lab_fail "publications left: $("$build_portpub" ls)"
lab_expect_clean "$before"

echo "package install: OK (used by hand, by Podman's hook and by its CNI backend; removal and purge as they should be)"
