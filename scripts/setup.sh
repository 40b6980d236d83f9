#!/usr/bin/env bash
# Installs what portpub needs to build, test and demo on Debian 12, and nothing
# that is already there. Idempotent and non-interactive.
#   scripts/setup.sh            build, test, demo, fuzz and package packages
#   scripts/setup.sh --bench    also what the benchmark compares against
#   scripts/setup.sh --package  only what building and packaging need (scripts/package.sh)
set -euo pipefail

build=(
  # build (with dpkg-buildflags' hardening flags, from dpkg-dev)
  cmake g++ make pkg-config dpkg-dev
  libnl-3-dev libnl-route-3-dev libnftnl-dev libmnl-dev libnetfilter-conntrack-dev
  libboost-program-options-dev nlohmann-json3-dev catch2
  # the firewalls beside portpub: iptables-legacy read through libiptc, firewalld over sd-bus
  libip4tc-dev libip6tc-dev libsystemd-dev
  # loopback rewritten in the kernel: libbpf loads the socket programs, which
  # clang compiles and bpftool embeds (bpftool gen skeleton)
  libbpf-dev bpftool clang
  # the proxies' seccomp filter
  libseccomp-dev
  # the Debian package (scripts/package.sh): dpkg-buildpackage wants
  # build-essential, debhelper builds it, lintian checks it
  build-essential debhelper lintian
)
packages=(
  "${build[@]}"
  # fuzzing (scripts/fuzz.sh): clang (above), and its libFuzzer and sanitizer runtimes
  libclang-rt-14-dev
  # tests and demo: namespaces, a look at the ruleset and the conntrack table, an HTTP client
  iproute2 nftables conntrack util-linux curl
  # the manual's tests: groff and mandoc render it, man finds it, col (bsdextrautils) strips it
  groff-base mandoc man-db bsdextrautils
  # examples/*/run.sh: JSON in bash (the CNI example plays the runtime with it)
  jq
  # the runtimes portpub is tested in: OCI hooks (runc, crun, Podman), and
  # CNI (Podman's CNI backend; the bridge plugin portpub chains after)
  runc crun podman containernetworking-plugins
  # the firewalls portpub is tested beside, each run in a test's own namespaces:
  # iptables (nft and legacy), ufw, firewalld (with a private dbus-daemon), Docker
  iptables ufw firewalld dbus-daemon docker.io
)
if [[ "${1:-}" == "--package" ]]; then
  packages=("${build[@]}")
elif [[ "${1:-}" == "--bench" ]]; then
  # CNI portmap 1.1 and netavark 1.4 (they drive iptables); iperf3 for the proxy;
  # gnuplot (without X) draws the charts of docs/BENCHMARKS.md
  packages+=(iperf3 netavark gnuplot-nox)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
# The demo's HTTP server is `busybox httpd`. Either build of busybox has it,
# and the two conflict: never replace one that is there.
if [[ ${1:-} != --package ]] && ! installed busybox && ! installed busybox-static; then
  missing+=(busybox-static)
fi
if ((${#missing[@]} == 0)); then
  echo "setup: every package is installed"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages of services (docker.io, firewalld) start them on install where
# nothing says otherwise: the tests run them in their own namespaces, and the
# machine's own are not to be started. policy-rc.d says no while apt runs.
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\n# portpub setup.sh: no service starts while it installs\nexit 101\n' |
    "${as_root[@]}" tee "$guard" >/dev/null
  "${as_root[@]}" chmod 755 "$guard"
  trap '"${as_root[@]}" rm -f "$guard"' EXIT
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Nor at the next boot: the units those packages enabled are disabled again.
# Only what this run installed; a service the machine had is left as it was.
units=()
for p in "${missing[@]}"; do
  case $p in
    docker.io) units+=(docker.service docker.socket containerd.service) ;;
    firewalld) units+=(firewalld.service) ;;
  esac
done
if ((${#units[@]})) && command -v systemctl >/dev/null; then
  "${as_root[@]}" systemctl disable --quiet "${units[@]}" 2>/dev/null || true
  echo "setup: ${units[*]} installed for the tests, not enabled (systemctl enable them to use them)"
fi
