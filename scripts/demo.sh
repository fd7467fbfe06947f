#!/usr/bin/env bash
# The main job on the embedded default: three meshd processes on loopback with
# simulated hypervisors. Shows the mesh, its ACL bootstrap, a live migration
# and a drain. DEMO_HOLD=1 keeps the mesh running afterwards (Ctrl-C stops
# it) and prints the environment to paste for meshctl.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/hostmesh-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

# Secured as production is: a gossip key file, the mesh's CA and a
# certificate per host (mutual TLS on Raft and the API). The CA key stays in
# $dir/tls.
(umask 077; bin/meshctl keygen >"$dir/gossip.key")
tls="$dir/tls"
echo "\$ meshctl tls ca create --dir $tls"
bin/meshctl tls ca create --dir "$tls" >/dev/null
for h in h1 h2 h3; do
	echo "\$ meshctl tls cert create --host $h --dir $tls"
	bin/meshctl tls cert create --host "$h" --dir "$tls" >/dev/null
done
start() { # name idx extra...
	local name=$1 i=$2; shift 2
	bin/meshd --name "$name" --cluster demo --data-dir "$dir/$name" --bind 127.0.0.1 \
		--gossip-port $((17946 + i)) --raft-port $((17300 + i)) --api-port $((17400 + i)) \
		--ca-file "$tls/hostmesh-ca.pem" --cert-file "$tls/$name.pem" --key-file "$tls/$name-key.pem" \
		--gossip-key-file "$dir/gossip.key" --hypervisor sim --sim-vms 3 --sim-vm-mem 2048 --sim-timescale 4 \
		--network vmnet --network vmnet.100 --storage-domain shared=/srv/shared \
		--log-level warn "$@" >"$dir/$name.log" 2>&1 &
	pids+=($!)
}
start h1 0 --bootstrap
start h2 1 --join 127.0.0.1:17946
start h3 2 --join 127.0.0.1:17946
# meshctl speaks HTTPS and verifies meshd with the mesh's CA.
export MESH_ADDR=127.0.0.1:17400 MESH_CACERT="$tls/hostmesh-ca.pem"
ctl() { echo; echo "\$ meshctl $*"; bin/meshctl "$@"; }

# ACLs are always on: until the management token exists, operators may only
# bootstrap. Bootstrap works once, as soon as the mesh has a leader; the
# secret is printed once and kept (hashed) nowhere else.
echo "\$ meshctl acl bootstrap"
for _ in $(seq 1 150); do
	if bin/meshctl acl bootstrap --json >"$dir/bootstrap.json" 2>"$dir/bootstrap.err"; then break; fi
	sleep 0.2
done
MESH_TOKEN=$(sed -n 's/.*"secret_id": *"\([0-9a-f]*\)".*/\1/p' "$dir/bootstrap.json")
[ -n "$MESH_TOKEN" ] || { echo "acl bootstrap failed:"; cat "$dir/bootstrap.err"; exit 1; }
(umask 077; echo "$MESH_TOKEN" >"$dir/management.token")
export MESH_TOKEN
echo "management token created; its secret is in $dir/management.token"
echo "meshctl reaches this mesh (while the demo runs) with:"
echo "  export MESH_ADDR=$MESH_ADDR MESH_CACERT=$MESH_CACERT MESH_TOKEN_FILE=$dir/management.token"

echo "waiting for 3 voters and 9 VMs..."
for _ in $(seq 1 150); do
	st=$(bin/meshctl status --json 2>/dev/null || true)
	case "$st" in *'"vms": 9'*) [ "$(echo "$st" | grep -c '"h[123]"')" -ge 3 ] && break ;; esac
	sleep 0.2
done
echo "web dashboard: https://$MESH_ADDR/ui/ (every host serves it; the browser must trust $MESH_CACERT)"
ctl status
# A token per user or tool, with the least policy it needs.
ctl acl token create --name ops-alice --policy operator
ctl acl token list
ctl hosts
ctl vms
ctl migrate h1-vm1 --dry-run
ctl migrate h1-vm1 --wait
ctl migrate h1-vm2 --to h1 || echo "(refused as expected: exit $?)"
ctl drain h2 --wait
ctl hosts
ctl vms
ctl migrations
ctl activate h2
echo
if [ -n "${DEMO_HOLD:-}" ]; then
	echo "demo done; the mesh keeps running. In another shell:"
	echo "  export MESH_ADDR=$MESH_ADDR MESH_CACERT=$MESH_CACERT MESH_TOKEN=$MESH_TOKEN"
	echo "  bin/meshctl hosts"
	echo "dashboard: https://$MESH_ADDR/ui/ (trust $MESH_CACERT; paste the token into its Token field)"
	echo "Ctrl-C stops the mesh."
	trap 'exit 0' INT TERM
	while :; do sleep 1; done
fi
echo "demo done; logs were in $dir (KEEP=1 keeps them)"
