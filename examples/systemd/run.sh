#!/usr/bin/env bash
# The unit portpub-forwards.service, tested as it is, in a private lab
# (../lab.sh): this directory's forwards.json in /etc/portpub/forwards.json
# (the unit's ConditionPathExists), then the unit's ExecStart line, read from
# the unit file, run as systemd would run it. Port 8080 forwards to a program
# on this host's port 80, port 8081 to port 80 of another machine
# (198.51.100.2, a namespace of the lab with no route back but its own
# subnet, so a reply only returns through portpub's masquerade). Clients on
# another "host" and on 127.0.0.1 get both pages; after `nft flush ruleset`
# the unit's ExecReload brings them back; `portpub forward rm` of both
# entries leaves nothing behind.
#   examples/systemd/run.sh [PORTPUB]     (root; PORTPUB defaults to build/portpub)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"
unit=$here/portpub-forwards.service

# The command of directive KEY= of the unit: one line, an absolute path and
# plain words (no systemd prefixes or specifiers), so splitting at blanks is
# what systemd does with it.
unit_command() {
  local lines
  lines=$(sed -n "s/^$1=//p" "$unit")
  [[ $(wc -l <<<"$lines") == 1 && $lines == /* && $lines != *[\$%\"\']* ]] ||
    lab_fail "expected one plain $1= line in $unit, found: $lines"
  echo "$lines"
}
exec_start=$(unit_command ExecStart)
exec_reload=$(unit_command ExecReload)
condition=$(sed -n 's/^ConditionPathExists=//p' "$unit")

lab_step "Another machine, 198.51.100.2, and a program on this host's port 80"
lab_peer remote rem0 198.51.100.1/24 198.51.100.2/24
mkdir -p "$LAB/local" "$LAB/remote"
echo "served by a program on this host" >"$LAB/local/index.html"
echo "served by the other machine" >"$LAB/remote/index.html"
lab_spawn host busybox httpd -f -p 80 -h "$LAB/local"
lab_spawn remote busybox httpd -f -p 80 -h "$LAB/remote"
lab_wait 50 bash -c "ss -Hltn 'sport = :80' | grep -q ." || lab_fail "httpd does not listen on port 80"
lab_wait 50 bash -c "ip netns exec remote ss -Hltn 'sport = :80' | grep -q ." ||
  lab_fail "httpd of the other machine does not listen"
before=$(lab_snapshot)

lab_step "Install forwards.json as $condition; run the unit's ExecStart: $exec_start"
mkdir -p "$(dirname "$condition")"
cp "$here/forwards.json" "$condition"
read -ra argv <<<"$exec_start"
"${argv[@]}" </dev/null >>"$LAB/unit.log" 2>&1 || lab_fail "ExecStart failed: $(cat "$LAB/unit.log")"
"$PORTPUB" forward ls

lab_step "The forwards answer, from another host and from 127.0.0.1"
lab_expect_page ext http://192.0.2.1:8080/ "served by a program on this host"
lab_expect_page ext http://192.0.2.1:8081/ "served by the other machine"
lab_expect_page host http://127.0.0.1:8080/ "served by a program on this host"
lab_expect_page host http://127.0.0.1:8081/ "served by the other machine"

lab_step "nft flush ruleset: the watcher ExecStart's forward apply started puts the forwards back"
pgrep -x portpub-watch --ns $$ --nslist mnt >/dev/null || lab_fail "forward apply started no watcher"
nft flush ruleset
lab_expect_page ext http://192.0.2.1:8081/ "served by the other machine"
lab_expect_page ext http://192.0.2.1:8080/ "served by a program on this host"

lab_step "nft flush ruleset without the watcher, then the unit's ExecReload: $exec_reload"
pkill -x portpub-watch --ns $$ --nslist mnt
lab_wait 50 bash -c "! pgrep -x portpub-watch --ns $$ --nslist mnt >/dev/null" || lab_fail "the watcher did not stop"
nft flush ruleset
lab_expect_gone ext http://192.0.2.1:8081/
read -ra argv <<<"$exec_reload"
"${argv[@]}" </dev/null >>"$LAB/unit.log" 2>&1 || lab_fail "ExecReload failed: $(cat "$LAB/unit.log")"
lab_expect_page ext http://192.0.2.1:8081/ "served by the other machine"
lab_expect_page host http://127.0.0.1:8081/ "served by the other machine"

lab_step "Remove both forwards"
"$PORTPUB" forward rm 8080:80/tcp
"$PORTPUB" forward rm 8081:80/tcp --to 198.51.100.2
jq -e '.forwards | length == 0' "$condition" >/dev/null || lab_fail "$condition still lists forwards: $(cat "$condition")"
lab_expect_gone ext http://192.0.2.1:8081/
lab_expect_gone host http://127.0.0.1:8081/
lab_expect_page host http://127.0.0.1:80/ "served by a program on this host"   # the program itself is untouched
pgrep -x portpub-watch --ns $$ --nslist mnt >/dev/null && lab_fail "a watcher runs after the last forward rm"
lab_expect_clean "$before"

echo "example systemd: OK (the unit's ExecStart served both forwards from another host and 127.0.0.1, its watcher and ExecReload restored them, rm left nothing)"
