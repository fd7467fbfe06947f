#!/bin/sh
# package.sh OUTDIR: builds OUTDIR/hostmesh_VERSION_ARCH.deb with dpkg-deb
# (part of dpkg, on every Debian machine: no packaging tool to install).
# make package runs it with VERSION and LDFLAGS; run from the repository root.
set -eu
out=${1:?usage: scripts/package.sh OUTDIR}
: "${VERSION:?VERSION unset (run make package)}"
: "${LDFLAGS:=}"
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

go build -trimpath -ldflags "$LDFLAGS" -o "$stage/usr/bin/" ./cmd/meshd ./cmd/meshctl
install -D -m 0644 deploy/systemd/meshd.service "$stage/lib/systemd/system/meshd.service"
install -D -m 0640 deploy/hostmesh/meshd.hcl "$stage/etc/hostmesh/meshd.hcl"
install -d -m 0750 "$stage/etc/hostmesh/meshd.d" "$stage/var/lib/hostmesh"
install -D -m 0644 deploy/completion/hostmesh.bash "$stage/usr/share/bash-completion/completions/meshctl"
ln -s meshctl "$stage/usr/share/bash-completion/completions/meshd"
install -d "$stage/usr/share/man/man1" "$stage/usr/share/man/man8"
go run ./scripts/mangen "$stage/usr/share/man/man1"
mv "$stage/usr/share/man/man1/meshd.8" "$stage/usr/share/man/man8/"
gzip -9n "$stage/usr/share/man/man8/meshd.8" "$stage/usr/share/man/man1/meshctl.1"
install -D -m 0644 README.md "$stage/usr/share/doc/hostmesh/README.md"
install -D -m 0644 deploy/systemd/meshd.service "$stage/usr/share/doc/hostmesh/examples/meshd.service"

install -d "$stage/DEBIAN"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: hostmesh
Version: $VERSION
Architecture: $arch
Maintainer: hostmesh maintainers <maintainers@hostmesh.invalid>
Installed-Size: $size
Depends: libc6
Recommends: libvirt0, libvirt-daemon-system
Section: admin
Priority: optional
Homepage: https://github.com/hostmesh/hostmesh
Description: live VM migration between hypervisor hosts, without a manager
 Every host runs meshd (Raft and gossip among the hosts, libvirt locally);
 operators drive the mesh with meshctl: hosts, VMs, live migrations,
 drains. The package installs both, a systemd unit (meshd.service, not
 started until configured), /etc/hostmesh/meshd.hcl and /var/lib/hostmesh.
CONTROL
echo /etc/hostmesh/meshd.hcl > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
# The unit is not enabled: meshd needs its certificates, gossip key and
# configuration first (see /usr/share/doc/hostmesh/README.md).
# Installed into another root (dpkg --root, DPKG_ROOT set): not this
# machine's systemd.
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTINST
chmod 0755 "$stage/DEBIAN/postinst"
mkdir -p "$out"
deb="$out/hostmesh_${VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
