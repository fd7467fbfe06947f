package lab

import "path/filepath"

// MeshdArgs is the command line of meshd (the binary at bin) on host h, with
// the flags an operator gives on a real hypervisor host: libvirt as the
// hypervisor, the host's management and migration addresses, the VM bridge
// as its network (--virt-type qemu: the lab's guests run under TCG), the shared directory as storage domain "shared", and the
// lab's CA, certificate, gossip key and management token. No
// --libvirt-peer-uri: meshd's default (qemu+tls://BIND/system, libvirtd
// having its certificate) is the lab's LibvirtURI. --unsafe-migration: the
// shared directory is a local file system every host sees, which libvirt
// cannot tell from unsafe storage (lab.md). Add --bootstrap or --join.
func (l *Lab) MeshdArgs(h *Host, bin string) []string {
	args := []string{bin,
		"--name", h.Name, "--cluster", h.Cluster,
		"--data-dir", filepath.Join(h.StateDir, "meshd"),
		"--bind", h.MgmtIP, "--migration-addr", h.MigIP,
		"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system", "--virt-type", "qemu",
		"--network", VMBridge,
		"--storage-domain", "shared=" + l.SharedDir,
		"--unsafe-migration", "--sample-interval", "500ms",
	}
	return append(args, l.MeshdSecurityFlags(h)...)
}
