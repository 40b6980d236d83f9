#!/usr/bin/env bash
# Every benchmark of docs/BENCHMARKS.md in one run, in private namespaces (the
# namespace it is started in is never changed), then the charts:
#   1. publish   portpub up/down for 1 ... 65,535 ports against CNI bridge +
#                portmap up to 1,000 ports (IPv4), then portpub alone with
#                --ipv6 (portpub-bench)                           ~ 2.5 min
#   2. netavark  netavark 1.4 setup/teardown for 1 ... 1,000 ports, driven
#                as Podman drives it (portpub-netavark-bench)      ~ 4 min
#                (1,000 ports: 1-1.3 min setup and 2-3 min teardown)
#   3. proxy     loopback throughput and connection rate: kernel rewriting
#                (with the connect program's cost), portpub proxy,
#                docker-proxy, direct, and the kernel path (DNAT, from the
#                external namespace); memory for 1,000 ports; then
#                rewriting against direct in 20 pairs of 1 s slices
#                (portpub-proxy-bench)                              ~ 6 min
#   4. runtimes  podman run to first page served: netavark, the portpub hook,
#                CNI bridge+portmap, CNI portpub (portpub-runtime-bench) ~ 1-3 min
#   5. soak      1,000 up/down cycles with a proxy carrying traffic
#                (portpub-soak)                                    ~ 2 min
#   6. firewall  what each tool leaves in the kernel for 1 and 10 ports:
#                firewall entries, route_localnet (tests/bench/firewall_facts.sh) ~ 5 s
#   7. docker    the real Docker engine (Debian's docker.io, confined to the
#                benchmark's namespaces): docker run -p / rm -f for 1 ... 1,000
#                ports against portpub up / down in the same run, the
#                docker-proxy processes and their PSS, the iptables rules
#                (portpub-docker-bench)                              ~ 2 min
#   8. heal      the watcher up starts: traffic back after each of 20
#                `nft flush ruleset`, its memory and CPU at rest and while
#                another program changes nftables (portpub-heal-bench) ~ 25 s
# About 17 minutes on 2 cores in all (785 s measured on 2026-11-23, before the docker part and the proxy part's pairs).
# Defaults of the full run:
#   portpub-bench --runs 7 --cni-runs 3 --max-cni-ports 1000
#   portpub-bench --runs 7 --no-cni --ipv6
#   portpub-netavark-bench --runs 3 --big-runs 1 --ports 1,10,100,1000
#   portpub-proxy-bench --seconds 5 --runs 5 --ports 1000 --pairs 20
#   portpub-runtime-bench --runs 5 --portmap-range-runs 1
#   portpub-soak --cycles 1000
#   portpub-docker-bench --runs 3 --big-runs 1 --ports 1,10,100,1000
#   portpub-heal-bench --flushes 20 --rest 10 --churn 500
#
#   scripts/bench.sh [--out DIR] [--img DIR] [--quick]    everything, then the charts
#   scripts/bench.sh [--out DIR] PART [options of that benchmark]
#     PART: publish | netavark | proxy | runtimes | soak | firewall | docker | heal | charts
# Each part prints Markdown tables on stdout and writes its figures as data
# files into DIR (default build/bench-results; whitespace-separated, "-" for
# not measured, "#" header lines naming the columns): publish-ipv4.dat, publish-ipv6.dat, netavark.dat, proxy.dat,
# proxy-memory.dat, runtimes.dat, soak.dat, firewall.dat, docker.dat, heal.dat; plus environment.txt (machine and
# package versions) and the whole stdout as report.md (report-PART.md for one
# part). The full run then draws docs/img/*.svg (or into --img DIR) with
# scripts/charts.sh, which can redraw them later from DIR.
# --quick: every part with tiny settings (about 2 minutes), to check the
# tooling, never for figures; its results go to build/bench-results-quick and
# its charts to DIR/img, not docs/img.
# The proxy part's docker-proxy comes from Debian's docker.io package,
# unpacked into build/bench-tools; the docker part runs the installed engine.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/bench.sh [--out DIR] [--img DIR] [--quick] [publish|netavark|proxy|runtimes|soak|firewall|docker|heal|charts] [options of that benchmark]" >&2
  exit 2
}

out=""
img=""
quick=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    --img) [[ $# -ge 2 ]] || usage; img=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) usage ;;
    *) break ;;
  esac
done
which="${1:-all}"
[[ $# -gt 0 ]] && shift
case $which in
  all) [[ $# -eq 0 ]] || { echo "bench: options go with a part: publish, netavark, proxy, runtimes or soak" >&2; exit 2; } ;;
  publish | netavark | proxy | runtimes | soak | firewall | docker | heal | charts) ;;
  *) usage ;;
esac
if [[ -z $out ]]; then
  out=build/bench-results
  ((quick)) && out=build/bench-results-quick
fi
if [[ -z $img ]]; then
  img=docs/img
  ((quick)) && img=$out/img
fi
if [[ $which == charts ]]; then
  exec scripts/charts.sh "$@" "$out" "$img"  # [--png]
fi

# Packages and build: their messages go to stderr, not into the report.
scripts/setup.sh --bench >&2
scripts/build.sh >/dev/null
mkdir -p "$out"

docker_proxy() {
  local dir=build/bench-tools
  if [[ ! -x $dir/usr/sbin/docker-proxy ]]; then
    mkdir -p "$dir"
    # apt-get download needs the package lists, which setup.sh fetches only
    # when it installs something.
    (cd "$dir" && rm -f docker.io_*.deb &&
      { apt-get download docker.io >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download docker.io >/dev/null; }; } &&
      dpkg-deb -x docker.io_*.deb .)
  fi
  echo "$dir/usr/sbin/docker-proxy"
}

# Settings of the full run, and of --quick.
if ((quick)); then
  publish4=(--runs 1 --cni-runs 1 --max-cni-ports 10)
  publish6=(--runs 1 --no-cni --ipv6)
  netavark=(--runs 1 --ports "1,10,100")
  proxy=(--seconds 1 --runs 1 --ports 20 --pairs 2)
  runtimes=(--runs 1 --portmap-range-runs 0)
  soak=(--cycles 20)
  docker=(--runs 1 --ports "1,10")
  heal=(--flushes 3 --rest 1 --churn 20)
else
  publish4=(--runs 7 --cni-runs 3 --max-cni-ports 1000)
  publish6=(--runs 7 --no-cni --ipv6)
  netavark=(--runs 3 --big-runs 1 --ports "1,10,100,1000")
  proxy=(--seconds 5 --runs 5 --ports 1000 --pairs 20)
  runtimes=(--runs 5 --portmap-range-runs 1)
  soak=(--cycles 1000)
  docker=(--runs 3 --big-runs 1 --ports "1,10,100,1000")
  heal=(--flushes 20 --rest 10 --churn 500)
fi

environment() {
  local p
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel: $(uname -r)"
  echo "cores: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "RLIMIT_NOFILE: $(ulimit -Sn) (soft), $(ulimit -Hn) (hard)"
  echo "portpub: $(build/portpub --version 2>/dev/null || echo '?') ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  for p in containernetworking-plugins netavark podman runc iptables iperf3 libnftnl11 libnl-3-200 gnuplot-nox docker.io; do
    echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
  done
  local deb
  deb=$(find build/bench-tools -maxdepth 1 -name 'docker.io_*.deb' -printf '%f' -quit 2>/dev/null || true)
  deb=${deb#docker.io_}
  echo "docker-proxy: docker.io ${deb%_*.deb}"
  echo "settings: $( ((quick)) && echo '--quick' || echo 'full run')"
}

# Runs one part: a heading, the benchmark, its duration on stderr.
declare -a durations=()
part() {
  local title=$1 name=$2
  shift 2
  local start=$SECONDS
  echo "## $title"
  echo
  "$@"
  echo
  durations+=("$name $((SECONDS - start)) s")
  echo "bench: $name took $((SECONDS - start)) s" >&2
}

publish_part() {
  local data=$out/publish-ipv4.dat
  [[ " $* " == *" --ipv6 "* ]] && data=$out/publish-ipv6.dat
  build/tests/portpub-bench --data "$data" "$@"
}
netavark_part() { build/tests/portpub-netavark-bench --data "$out/netavark.dat" "$@"; }
proxy_part() {
  build/tests/portpub-proxy-bench --docker-proxy "$(docker_proxy)" --data "$out/proxy.dat" \
    --memory-data "$out/proxy-memory.dat" "$@"
}
runtimes_part() { build/tests/portpub-runtime-bench --data "$out/runtimes.dat" "$@"; }
soak_part() { build/tests/portpub-soak --data "$out/soak.dat" "$@"; }
firewall_part() { tests/bench/firewall_facts.sh build/portpub "$out/firewall.dat"; }
docker_part() { build/tests/portpub-docker-bench --data "$out/docker.dat" "$@"; }
heal_part() { build/tests/portpub-heal-bench --data "$out/heal.dat" "$@"; }

run_all() {
  if ((quick)); then
    echo "_Quick run (scripts/bench.sh --quick): tiny settings to check the tooling; these are not figures._"
  else
    echo "_Full run: about 17 minutes on 2 cores (publish 2.5, netavark 4, proxy 6, runtimes 1-3, soak 2, docker 2)._"
  fi
  echo
  echo '```'
  cat "$out/environment.txt"
  echo '```'
  echo
  part "Publishing ports: portpub against CNI bridge + portmap (IPv4)" publish publish_part "${publish4[@]}"
  part "Publishing ports: portpub with IPv6 (--subnet6)" publish-ipv6 publish_part "${publish6[@]}"
  part "Publishing ports: netavark 1.4" netavark netavark_part "${netavark[@]}"
  part "Loopback: kernel rewriting, the proxy, docker-proxy and direct" proxy proxy_part "${proxy[@]}"
  part "Container start to served, with Podman" runtimes runtimes_part "${runtimes[@]}"
  part "Soak: up/down cycles with a proxy carrying traffic" soak soak_part "${soak[@]}"
  part "What each tool leaves in the kernel" firewall firewall_part
  part "The Docker engine beside portpub" docker docker_part "${docker[@]}"
  part "The watcher: healing after a flush" heal heal_part "${heal[@]}"
  echo "Durations of this run: ${durations[*]/%/;} total $((SECONDS - start)) s."
}

[[ $which == all || $which == proxy ]] && docker_proxy >/dev/null
environment >"$out/environment.txt"
start=$SECONDS
case $which in
  all)
    if ((quick)); then
      echo "bench: quick run, about 2 minutes; results in $out" >&2
    else
      echo "bench: full run, about 17 minutes on 2 cores; results in $out, charts in $img" >&2
    fi
    run_all | tee "$out/report.md"
    scripts/charts.sh "$out" "$img" >&2
    echo "bench: done in $((SECONDS - start)) s; report $out/report.md" >&2
    ;;
  publish) part "Publishing ports" publish publish_part "$@" | tee "$out/report-publish.md" ;;
  netavark) part "Publishing ports: netavark 1.4" netavark netavark_part "$@" | tee "$out/report-netavark.md" ;;
  proxy)
    (($# == 0)) && set -- "${proxy[@]}"
    part "Loopback: kernel rewriting, the proxy, docker-proxy and direct" proxy proxy_part "$@" | tee "$out/report-proxy.md" ;;
  runtimes) part "Container start to served, with Podman" runtimes runtimes_part "$@" | tee "$out/report-runtimes.md" ;;
  soak) part "Soak: up/down cycles with a proxy carrying traffic" soak soak_part "$@" | tee "$out/report-soak.md" ;;
  firewall) part "What each tool leaves in the kernel" firewall firewall_part | tee "$out/report-firewall.md" ;;
  docker)
    # No options: the full run's settings (--quick: its own).
    (($# == 0)) && set -- "${docker[@]}"
    part "The Docker engine beside portpub" docker docker_part "$@" | tee "$out/report-docker.md" ;;
  heal)
    (($# == 0)) && set -- "${heal[@]}"
    part "The watcher: healing after a flush" heal heal_part "$@" | tee "$out/report-heal.md" ;;
esac
