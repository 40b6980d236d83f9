#!/usr/bin/env bash
# What the package holds, as dpkg-deb shows it: exactly the expected files,
# the hook file and the units naming /usr/sbin/portpub, the CNI plugin a link
# to it, /etc/portpub/forwards.json a conffile, maintainer scripts that run
# nothing of the network, and dependencies that are exactly the packages of
# the shared libraries the binary loads (dpkg-shlibdeps's work, checked
# against ldd). No root needed.
#   contents_test.sh REPO_DIR
set -euo pipefail
repo=$1
# (pkg_files; sourcing defines functions only: no lab is made here)
# shellcheck source=tests/package/package_lab.sh
source "$(dirname "$0")/package_lab.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
version=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
deb=$(echo "$repo"/build/package/portpub_"${version}"_*.deb)
[[ -f $deb ]] || fail "no $deb: scripts/package.sh makes it"
echo "package: $deb"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# (Outputs are captured before grep: under pipefail, grep -q quitting early
# would fail the writer with SIGPIPE.)
files=$(pkg_files "$deb")
expected=$(sort <<'LIST'
/etc/portpub/forwards.json
/lib/systemd/system/portpub-forwards.service
/lib/systemd/system/portpub-watch.service
/usr/lib/cni/portpub
/usr/sbin/portpub
/usr/share/bash-completion/completions/portpub
/usr/share/containers/oci/hooks.d/portpub.json
/usr/share/doc/portpub/changelog.gz
/usr/share/doc/portpub/copyright
/usr/share/man/man8/portpub.8.gz
LIST
)
[[ $files == "$expected" ]] || { diff <(echo "$expected") <(echo "$files") >&2 || true;
  fail "the package's files differ from the expected ones (< expected, > in the package)"; }
echo "files: as expected ($(wc -l <<<"$files"))"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
[[ $(readlink "$work/root/usr/lib/cni/portpub") == ../../sbin/portpub ]] ||
  fail "/usr/lib/cni/portpub is not a link to ../../sbin/portpub: $(ls -l "$work/root/usr/lib/cni/portpub")"
[[ $(stat -c %a "$work/root/usr/sbin/portpub") == 755 ]] || fail "/usr/sbin/portpub is not mode 755"
hook=$(cat "$work/root/usr/share/containers/oci/hooks.d/portpub.json")
[[ $(jq -r .hook.path <<<"$hook") == /usr/sbin/portpub ]] || fail "the hook names $(jq -r .hook.path <<<"$hook")"
[[ $(jq -c .stages <<<"$hook") == '["createRuntime","poststop"]' ]] || fail "the hook's stages: $(jq -c .stages <<<"$hook")"
for unit in portpub-watch portpub-forwards; do
  execs=$(grep -E '^Exec[A-Za-z]*=' "$work/root/lib/systemd/system/$unit.service")
  grep -q '^ExecStart=/usr/sbin/portpub ' <<<"$execs" || fail "$unit.service: $execs"
  ! grep -v '=/usr/sbin/portpub ' <<<"$execs" || fail "$unit.service runs something else"
done
[[ $(cat "$work/control/conffiles") == /etc/portpub/forwards.json ]] ||
  fail "conffiles: $(cat "$work/control/conffiles")"
echo "the hook, the units and the CNI plugin name /usr/sbin/portpub; conffile /etc/portpub/forwards.json"

# Maintainer scripts: none fetches anything, none starts or enables a unit.
for script in "$work"/control/{preinst,postinst,prerm,postrm}; do
  [[ -f $script ]] || continue
  ! grep -nE '\b(curl|wget|apt-get|apt|git|ping|nc|systemctl +(start|enable|restart))\b' "$script" ||
    fail "${script##*/} reaches out or starts something (above)"
done
scripts=$(for s in preinst postinst prerm postrm; do if [[ -f $work/control/$s ]]; then echo "$s"; fi; done)
echo "maintainer scripts: $(xargs <<<"$scripts"), none reaches the network or starts a unit"

# Depends: the packages of the libraries the binary names (its NEEDED
# entries, where ldd finds them), no more, no fewer (a package named once,
# whatever the version constraint).
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/ *(.*//; s/ *$//' | sort -u)
needed=$(readelf -d "$work/root/usr/sbin/portpub" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
resolved=$(ldd "$work/root/usr/sbin/portpub")
libraries=$(while read -r name; do
  awk -v n="$name" '$1 == n && $3 ~ /^\// { print $3 }' <<<"$resolved"
done <<<"$needed")
[[ -n $needed && $(wc -l <<<"$libraries") == $(wc -l <<<"$needed") ]] ||
  fail "ldd does not find every library the binary needs: $(xargs <<<"$needed")"
owners=$(while read -r lib; do
  dpkg -S "$(realpath "$lib")" 2>/dev/null || dpkg -S "$lib"
done <<<"$libraries" | cut -d: -f1 | sort -u)
[[ $depends == "$owners" ]] || { diff <(echo "$owners") <(echo "$depends") >&2 || true;
  fail "Depends differs from the packages of the binary's libraries (< libraries, > Depends)"; }
for field in Pre-Depends Recommends Suggests; do
  [[ -z $(dpkg-deb -f "$deb" "$field") ]] || fail "$field: $(dpkg-deb -f "$deb" "$field")"
done
echo "Depends: $(xargs <<<"$depends")"
echo "contents: OK"
