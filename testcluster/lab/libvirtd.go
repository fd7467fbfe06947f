package lab

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// libvirtdConf listens on the management IP only, with TLS: a peer must
// present a certificate of the lab's CA (libvirt's defaults: auth_tls
// "none" means the verified certificate is the authentication). Every host
// gets its own host_uuid: libvirt refuses to migrate to a host with its own
// UUID. With ListenTCP the old unauthenticated tcp link is added, for
// debugging only.
func (h *Host) libvirtdConf() string {
	tcp := "listen_tcp = 0\n"
	if h.ListenTCP {
		tcp = "listen_tcp = 1\nauth_tcp = \"none\"\n"
	}
	return fmt.Sprintf(`listen_tls = 1
%slisten_addr = %q
host_uuid = %q
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
`, tcp, h.MgmtIP, hostUUID(h.Name))
}

// qemuConf follows lab.md: QEMU as root with no security driver and no
// cgroups (no systemd in the lab), QEMU's output to files (no virtlogd), and
// incoming migrations listening on the migration network.
func (h *Host) qemuConf() string {
	return fmt.Sprintf(`user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
migration_address = %q
`, h.MigIP)
}

// hostUUID derives a stable, distinct UUID from the host name.
func hostUUID(name string) string {
	s := sha256.Sum256([]byte("hostmesh-lab/" + name))
	s[6] = (s[6] & 0x0f) | 0x40
	s[8] = (s[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// startLibvirtd writes the host's libvirt configuration into its private
// /etc/libvirt, starts libvirtd in the host and waits until it answers on
// the management network.
func (h *Host) startLibvirtd(ctx context.Context) error {
	etc := filepath.Join(h.StateDir, "etc")
	for name, body := range map[string]string{"libvirtd.conf": h.libvirtdConf(), "qemu.conf": h.qemuConf()} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("host %s: write %s: %w", h.Name, name, err)
		}
	}
	// The default pid file in /run would collide between hosts; keep it in
	// the host's private /run/libvirt.
	if _, err := h.Run(ctx, "libvirtd", "--listen", "-d", "--pid-file", "/run/libvirt/hm-libvirtd.pid"); err != nil {
		return fmt.Errorf("host %s: start libvirtd: %w", h.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := poll(wctx, 100*time.Millisecond, "libvirtd of "+h.Name, func() (bool, error) {
		_, err := h.Virsh(wctx, "version")
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("host %s: libvirtd not answering (log: %s): %w",
			h.Name, filepath.Join(h.StateDir, "log", "libvirtd.log"), err)
	}
	return nil
}
