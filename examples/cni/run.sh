#!/usr/bin/env bash
# Plays a CRI runtime (containerd or CRI-O, as kubelet drives them for a pod
# with a hostPort) on this directory's conflists, as they are, in a private
# lab (../lab.sh). For each conflist: a pod namespace running busybox httpd,
# then the plugins of the list called as libcni calls them (ADD in order,
# each given the previous result; CHECK with the cached result; DEL in
# reverse order, twice, as a runtime retries), with the CNI_* variables and
# runtimeConfig.portMappings the runtime passes. Between ADD and DEL a client
# on another "host" fetches the page through host port 8080; after DEL
# portpub has left nothing behind (with the bridge plugin, its bridge and
# ip_forward stay: that plugin never removes them).
#   examples/cni/run.sh [PORTPUB [containerd|cri-o]]   (root; default build/portpub, containerd)
#
# The two runtimes differ in one thing portpub sees: containerd passes its
# go-cni PortMapping structs, which have no JSON tags, so the keys are
# "HostPort", "ContainerPort", "Protocol", "HostIP"; CRI-O's ocicni writes
# "hostPort", "containerPort", "protocol", "hostIP".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"
runtime=${2:-containerd}

case $runtime in
  containerd) mappings='[{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]' ;;
  cri-o) mappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]' ;;
  *) lab_fail "unknown runtime '$runtime': containerd or cri-o" ;;
esac

lab_step "Install: portpub linked into the plugin directory; Debian's plugins beside it"
mkdir -p /usr/local/lib/cni
ln -sfn /usr/local/sbin/portpub /usr/local/lib/cni/portpub
export CNI_PATH=/usr/local/lib/cni:/usr/lib/cni
echo "CNI_PATH=$CNI_PATH; runtimeConfig.portMappings as $runtime passes it: $mappings"

# cni_plugin CMD ID NETNS CONF: runs the plugin CONF names, CONF on its stdin,
# as libcni does; its stdout on ours. Fails, showing the plugin's error, when
# it fails.
cni_plugin() {
  local cmd=$1 id=$2 netns=$3 conf=$4 type dir out status=0
  type=$(jq -r .type <<<"$conf")
  for dir in ${CNI_PATH//:/ }; do [[ -x $dir/$type ]] && break; done
  [[ -x $dir/$type ]] || lab_fail "no plugin $type in $CNI_PATH"
  out=$(CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_NETNS=$netns CNI_IFNAME=eth0 \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=$id;K8S_POD_UID=0a3f1c2e-5b7d-4e8f-9a1b-2c3d4e5f6a7b" \
    "$dir/$type" <<<"$conf" 2>>"$LAB/plugins.log") || status=$?
  ((status == 0)) || lab_fail "$type $cmd: exit $status: $out $(tail -n 3 "$LAB/plugins.log")"
  printf '%s' "$out"
}

# The configuration libcni gives plugin I of LIST: the plugin's own object,
# the list's name and cniVersion, runtimeConfig with the capabilities the
# plugin declares (here portMappings), and prevResult when there is one.
cni_conf() {
  local list=$1 i=$2 prev=$3
  jq -c --argjson i "$i" --argjson pm "$mappings" --argjson prev "$prev" '
    .plugins[$i] + {name: .name, cniVersion: .cniVersion}
    | if .capabilities.portMappings == true then .runtimeConfig = {portMappings: $pm} else . end
    | if $prev != null then .prevResult = $prev else . end' "$list"
}

cni_list() {
  local cmd=$1 list=$2 id=$3 netns=$4 cache=$LAB/result-$3.json n i prev=null out
  n=$(jq '.plugins | length' "$list")
  case $cmd in
    ADD)
      for ((i = 0; i < n; i++)); do
        out=$(cni_plugin ADD "$id" "$netns" "$(cni_conf "$list" "$i" "$prev")")
        prev=$(jq -c . <<<"$out") || lab_fail "ADD of plugin $i: not JSON: $out"
      done
      echo "$prev" >"$cache" ;;
    CHECK)
      for ((i = 0; i < n; i++)); do
        out=$(cni_plugin CHECK "$id" "$netns" "$(cni_conf "$list" "$i" "$(cat "$cache")")")
        [[ -z $out ]] || lab_fail "CHECK of plugin $i printed: $out"
      done ;;
    DEL)
      [[ -f $cache ]] && prev=$(cat "$cache")
      for ((i = n - 1; i >= 0; i--)); do
        cni_plugin DEL "$id" "$netns" "$(cni_conf "$list" "$i" "$prev")" >/dev/null
      done ;;
  esac
}

for list in "$here"/*.conflist; do
  name=$(jq -r .name "$list")
  lab_step "$(basename "$list") (network $name)"
  # The bridge plugin leaves its bridge, and ip_forward on, after DEL.
  ignore=
  bridge=$(jq -r '.plugins[] | select(.type == "bridge") | .bridge' "$list")
  [[ -z $bridge ]] || ignore="$bridge|^ip_forward "
  before=$(lab_snapshot_but "$ignore")

  id=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)   # a sandbox id, as the runtime makes one
  netns=/run/netns/cni-$name
  ip netns add "cni-$name"
  page="served through $name, set up as $runtime does"
  mkdir -p "$LAB/www-$name" && echo "$page" >"$LAB/www-$name/index.html"
  lab_spawn "cni-$name" busybox httpd -f -p 80 -h "$LAB/www-$name"
  server=$!
  lab_on_exit "$(printf '%q ' cni_list DEL "$list" "$id" "$netns")"

  cni_list ADD "$list" "$id" "$netns"
  echo "ADD: $(jq -c '{ips: [.ips[].address], interfaces: [.interfaces[].name]}' "$LAB/result-$id.json")"
  "$PORTPUB" ls
  lab_expect_page ext http://192.0.2.1:8080/ "$page"
  lab_expect_page host http://127.0.0.1:8080/ "$page"
  cni_list CHECK "$list" "$id" "$netns"
  echo "CHECK: every plugin succeeded"

  cni_list DEL "$list" "$id" "$netns"
  cni_list DEL "$list" "$id" "$netns"
  echo "DEL (twice): every plugin succeeded"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  ip netns del "cni-$name"
  lab_expect_gone ext http://192.0.2.1:8080/
  for lease in /var/lib/cni/networks/"$name"/*; do   # host-local: a file per address in use
    [[ ! -e $lease || ${lease##*/} == lock || ${lease##*/} == last_reserved_ip.* ]] ||
      lab_fail "host-local still holds ${lease##*/}"
  done
  lab_expect_clean "$before" "$ignore"
done

echo "example cni ($runtime): OK (each conflist: ADD, page through 192.0.2.1:8080 and 127.0.0.1:8080, CHECK, DEL left nothing)"
