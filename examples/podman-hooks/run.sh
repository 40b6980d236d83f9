#!/usr/bin/env bash
# Podman with this directory's hooks.d (hooks.d/portpub.json, as it is) in a
# private lab (../lab.sh): `podman run --network none --annotation
# io.portpub.ports=8080:80` gets its port published by the createRuntime
# hook, a client on another "host" fetches the page, and `podman rm` (the
# poststop hook) leaves nothing behind. A container without the annotation is
# left alone.
#   examples/podman-hooks/run.sh [PORTPUB]     (root; PORTPUB defaults to build/portpub)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lab.sh"
lab_init "$@"

lab_step "Podman confined to the lab, with --hooks-dir $here/hooks.d"
: >"$LAB/empty.conf"
lab_podman "$LAB/empty.conf"
podman=("${PODMAN[@]}" --hooks-dir "$here/hooks.d")
page="served by podman through the portpub hook"
lab_rootfs "$LAB/web" "$page"
lab_rootfs "$LAB/other" "not published"
before=$(lab_snapshot)
lab_on_exit "${podman[*]} rm -f -t 0 web other"

lab_step "podman run --network none --annotation io.portpub.ports=8080:80 ..."
run() {
  "${podman[@]}" run -d --name "$1" "${PODMAN_LIMITS[@]}" --runtime runc --network none "${@:2}" \
    --rootfs "$LAB/$1/rootfs" /bin/httpd -f -p 80 -h /www </dev/null >>"$PODMAN_LOG" 2>&1 ||
    lab_fail "podman run $1 failed: $(cat "$PODMAN_LOG")"
}
run web --annotation io.portpub.ports=8080:80 --annotation io.portpub.subnet=198.51.100.0/24
run other   # no annotation: the hook's "when" does not match
"$PORTPUB" ls
[[ $("$PORTPUB" ls --json | jq length) == 1 ]] || lab_fail "expected one publication (web only)"

lab_step "Fetch the page through the published port"
lab_expect_page ext http://192.0.2.1:8080/ "$page"
lab_expect_page host http://127.0.0.1:8080/ "$page"

lab_step "podman rm: the poststop hook (run by Podman's clean-up process) takes it all down"
"${podman[@]}" rm -f -t 0 web other >>"$PODMAN_LOG" 2>&1 || lab_fail "podman rm failed: $(cat "$PODMAN_LOG")"
lab_wait 100 lab_is_clean "$before" || true   # poststop runs just after rm returns
lab_expect_gone ext http://192.0.2.1:8080/
lab_expect_clean "$before"

echo "example podman-hooks: OK (page served through 192.0.2.1:8080 and 127.0.0.1:8080, nothing left after podman rm)"
