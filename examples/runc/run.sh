#!/usr/bin/env bash
# Runs this directory's bundle with runc in a private lab (../lab.sh): the
# config.json's createRuntime hook publishes 8080 -> 80 of the container, a
# client on another "host" fetches the page through it, and deleting the
# container (poststop) leaves nothing behind.
#   examples/runc/run.sh [PORTPUB]     (root; PORTPUB defaults to build/portpub)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"
runtime=runc

lab_step "A bundle: this directory's config.json, as it is, and a busybox root filesystem"
bundle=$LAB/bundle
mkdir -p "$bundle"
cp "$here/config.json" "$bundle/config.json"
page="served by $runtime through portpub"
lab_rootfs "$bundle" "$page"
before=$(lab_snapshot)
rt=("$runtime" --root "$LAB/$runtime")
lab_on_exit "${rt[*]} delete -f web"

lab_step "$runtime run -d web: the createRuntime hook publishes io.portpub.ports=8080:80"
"${rt[@]}" run -d --bundle "$bundle" web </dev/null >>"$LAB/$runtime.log" 2>&1 ||
  lab_fail "$runtime run failed: $(cat "$LAB/$runtime.log")"
"$PORTPUB" ls

lab_step "Fetch the page through the published port"
lab_expect_page ext http://192.0.2.1:8080/ "$page"
lab_expect_page host http://127.0.0.1:8080/ "$page"

lab_step "$runtime kill, $runtime delete: the poststop hook takes it all down"
"${rt[@]}" kill web KILL
lab_wait 100 bash -c "${rt[*]} state web | grep -q '\"stopped\"'" || lab_fail "web did not stop"
"${rt[@]}" delete web >>"$LAB/$runtime.log" 2>&1 || lab_fail "$runtime delete failed: $(cat "$LAB/$runtime.log")"
lab_expect_gone ext http://192.0.2.1:8080/
lab_expect_clean "$before"

echo "example $runtime: OK (page served through 192.0.2.1:8080 and 127.0.0.1:8080, nothing left after delete)"
