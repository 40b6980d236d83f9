#!/usr/bin/env bash
# What each tool leaves in the kernel to publish ports: firewall entries for
# 1 and for 10 published TCP ports of one container, the growth for each
# further port, and the bridge's route_localnet; for portpub, CNI bridge +
# portmap (Debian's plugins) and netavark 1.4 (as Podman drives it). Also the
# descriptor limit the benchmarks ran under. Prints a Markdown table, and
# the figures as a data file when given one.
#   tests/bench/firewall_facts.sh PORTPUB [DATA_FILE]      (root)
# Each tool runs in namespaces of its own (unshare --net --mount --pid): the
# namespace it is started in is never changed.
set -euo pipefail
portpub=$(realpath "$1")
data=${2:-}
[[ -z $data || $data == --one ]] || data=$(realpath -m -- "$data")

if [[ -z ${PORTPUB_FACTS_OUTER:-} ]]; then
  export PORTPUB_FACTS_OUTER="$(readlink /proc/self/ns/net) $(readlink /proc/self/ns/mnt)"
  for tool in portpub cni netavark; do
    for ports in 1 10; do
      unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc \
        "$0" "$portpub" --one "$tool" "$ports"
    done
  done >/tmp/.portpub-facts.$$
  results=$(cat /tmp/.portpub-facts.$$)
  rm -f /tmp/.portpub-facts.$$
  # results: "tool ports entries route_localnet", one a line
  row() {  # tool label
    local one ten rl
    one=$(awk -v t="$1" '$1 == t && $2 == 1 {print $3}' <<<"$results")
    ten=$(awk -v t="$1" '$1 == t && $2 == 10 {print $3}' <<<"$results")
    rl=$(awk -v t="$1" '$1 == t && $2 == 10 {print $4}' <<<"$results")
    printf '| %s | %s | %s | %s | %s |\n' "$2" "$one" "$ten" \
      "$(awk -v a="$one" -v b="$ten" 'BEGIN {printf "%g", (b - a) / 9}')" "$rl"
    [[ -z $data ]] || printf '"%s" %s %s %s %s\n' "$2" "$one" "$ten" \
      "$(awk -v a="$one" -v b="$ten" 'BEGIN {printf "%g", (b - a) / 9}')" "$rl" >>"$data"
  }
  if [[ -n $data ]]; then
    printf '# firewall entries for 1 and 10 published TCP ports, growth a port, route_localnet of the bridge\n' >"$data"
    printf '# tool entries_1 entries_10 entries_per_port bridge_route_localnet\n' >>"$data"
  fi
  echo "| tool | firewall entries, 1 port | 10 ports | each further port | route_localnet on the bridge |"
  echo "|---|---:|---:|---:|---:|"
  row portpub "portpub (nftables rules + map and set elements)"
  row cni "CNI bridge + portmap (iptables rules, nat and filter)"
  row netavark "netavark 1.4 (iptables rules, nat and filter)"
  echo
  echo "Descriptors: RLIMIT_NOFILE $(ulimit -Sn) (soft), $(ulimit -Hn) (hard)."
  exit 0
fi

# --one TOOL PORTS: in the private namespaces.
[[ ${2:-} == --one ]] || { echo "usage: $0 PORTPUB [DATA_FILE]" >&2; exit 2; }
tool=$3 ports=$4
for outer in $PORTPUB_FACTS_OUTER; do
  [[ $outer != "$(readlink /proc/self/ns/net)" && $outer != "$(readlink /proc/self/ns/mnt)" ]] ||
    { echo "firewall_facts: refusing to run in the namespaces it was started in" >&2; exit 1; }
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns /run/state /run/ipam /run/netavark
for dir in /var/lib; do  # host-local's and netavark's state stay here
  mkdir -p "/run/ovl/upper" "/run/ovl/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=/run/ovl/upper,workdir=/run/ovl/work" "$dir"
done
ip link set lo up
ip netns add c1

mappings_json() {  # portMappings of CNI, port_mappings of netavark
  local i sep=""
  printf '['
  for ((i = 0; i < ports; i++)); do
    printf '%s{"%s":%d,"%s":%d,"protocol":"tcp"%s}' "$sep" "$1" $((10000 + i)) "$2" $((10000 + i)) "$3"
    sep=,
  done
  printf ']'
}
iptables_entries() { iptables-save | grep -c '^-A' || true; }
bridge_rl() { cat "/proc/sys/net/ipv4/conf/$1/route_localnet"; }

case $tool in
  portpub)
    args=()
    for ((i = 0; i < ports; i++)); do args+=(-p "$((10000 + i)):$((10000 + i))"); done
    # Firewall entries only: loopback stays the proxy's (no socket programs,
    # which would attach at the machine's cgroup root from here).
    "$portpub" up --netns /run/netns/c1 --subnet 198.51.100.0/24 --state-dir /run/state \
      --loopback proxy "${args[@]}" >/dev/null
    # rules of the table, and the elements of its maps and sets
    rules=$(nft -a list table inet portpub | grep -c '# handle' || true)
    chains_sets=$(nft -a list table inet portpub | grep -cE '^\s*(chain|map|set) ' || true)
    elements=$(nft -j list table inet portpub | jq '[.nftables[] | (.map // .set) | select(. != null) | (.elem // []) | length] | add')
    echo "portpub $ports $((rules - chains_sets + elements)) $(bridge_rl portpub0)"
    ;;
  cni)
    export CNI_CONTAINERID=facts CNI_NETNS=/run/netns/c1 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
    before=$(iptables_entries)
    bridge='{"cniVersion":"1.0.0","name":"facts","type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"198.51.100.0/24"}]],"dataDir":"/run/ipam"}}'
    result=$(CNI_COMMAND=ADD /usr/lib/cni/bridge <<<"$bridge")
    jq -n --argjson prev "$result" --argjson pm "$(mappings_json hostPort containerPort '')" \
      '{cniVersion:"1.0.0",name:"facts",type:"portmap",capabilities:{portMappings:true},runtimeConfig:{portMappings:$pm},prevResult:$prev}' |
      CNI_COMMAND=ADD /usr/lib/cni/portmap >/dev/null
    echo "cni $ports $(($(iptables_entries) - before)) $(bridge_rl cni0)"
    ;;
  netavark)
    before=$(iptables_entries)
    jq -n --argjson pm "$(mappings_json host_port container_port ',"host_ip":"","range":1')" '{
        container_id: ("f" * 64), container_name: "facts", port_mappings: $pm,
        networks: {facts: {static_ips: ["198.51.100.2"], interface_name: "eth0"}},
        network_info: {facts: {name: "facts", id: ("b" * 64), driver: "bridge",
          network_interface: "netavark0",
          subnets: [{subnet: "198.51.100.0/24", gateway: "198.51.100.1"}],
          ipv6_enabled: false, internal: false, dns_enabled: false,
          ipam_options: {driver: "host-local"}}}}' >/run/options.json
    NETAVARK_FW=iptables /usr/lib/podman/netavark --config /run/netavark --rootless false \
      setup /run/netns/c1 </run/options.json >/dev/null
    echo "netavark $ports $(($(iptables_entries) - before)) $(bridge_rl netavark0)"
    ;;
esac
