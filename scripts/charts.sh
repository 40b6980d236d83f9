#!/usr/bin/env bash
# Draws the charts of docs/BENCHMARKS.md with gnuplot (scripts/charts.gp)
# from the data files of a run of scripts/bench.sh:
#   scripts/charts.sh [--png] [RESULTS_DIR [IMG_DIR]]
# RESULTS_DIR: default build/bench-results; IMG_DIR: default docs/img.
# Writes setup-time.svg, teardown-time.svg (from publish-ipv4.dat,
# publish-ipv6.dat, netavark.dat), throughput.svg and connections.svg (from
# proxy.dat); --png writes PNG instead, e.g. to look at them.
set -euo pipefail
cd "$(dirname "$0")/.."

format=svg
if [[ ${1:-} == --png ]]; then
  format=png
  shift
fi
results="${1:-build/bench-results}"
img="${2:-docs/img}"
command -v gnuplot >/dev/null || { echo "charts: gnuplot is missing (scripts/setup.sh --bench installs gnuplot-nox)" >&2; exit 1; }
[[ -d $results ]] || { echo "charts: no results in $results (run scripts/bench.sh first)" >&2; exit 1; }
[[ $results != *"'"* && $img != *"'"* ]] || { echo "charts: no quotes in paths, please" >&2; exit 2; }
if [[ ! -s $results/publish-ipv4.dat && ! -s $results/proxy.dat ]]; then
  echo "charts: neither publish-ipv4.dat nor proxy.dat in $results: nothing to draw" >&2
  exit 1
fi
mkdir -p "$img"
gnuplot -e "results='$results'; img='$img'; format='$format'" scripts/charts.gp
for chart in setup-time teardown-time throughput connections; do
  [[ -s $img/$chart.$format ]] && echo "charts: $img/$chart.$format"
done
exit 0
