package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strings"
)

// ErrPrereq is returned when the machine lacks something the lab needs (root,
// a command, a device). The message says what to install.
var ErrPrereq = errors.New("lab prerequisite missing")

// requiredCommands maps each command the lab runs to the Debian package that
// provides it.
var requiredCommands = map[string]string{
	"ip":                 "iproute2",
	"nsenter":            "util-linux",
	"unshare":            "util-linux",
	"libvirtd":           "libvirt-daemon libvirt-daemon-driver-qemu",
	"virsh":              "libvirt-clients",
	"qemu-system-x86_64": "qemu-system-x86",
	"qemu-img":           "qemu-utils",
	"busybox":            "busybox-static",
	"cpio":               "cpio",
	"gzip":               "gzip",
	"apt-get":            "apt",
	"dpkg":               "dpkg",
	"go":                 "(the Go toolchain, to build guestagent)",
}

// DebianPackages lists the packages the lab needs, for CI and `labctl deps`.
var DebianPackages = []string{
	"iproute2", "util-linux", "qemu-system-x86", "qemu-utils", "libvirt-daemon",
	"libvirt-daemon-driver-qemu", "libvirt-clients", "busybox-static", "cpio", "gzip",
}

// checkPrereqs fails loudly, naming packages, when the lab cannot run here.
func checkPrereqs() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the lab needs root (namespaces, bridges, libvirtd); running as uid %d", ErrPrereq, os.Geteuid())
	}
	var missing []string
	for cmd, pkg := range requiredCommands {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", cmd, pkg))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("%w: commands not found: %s; install: apt-get install -y %s",
			ErrPrereq, strings.Join(missing, ", "), strings.Join(DebianPackages, " "))
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("%w: /dev/net/tun: %v", ErrPrereq, err)
	}
	return nil
}

// ensureQemuUser creates the user and groups libvirt's QEMU driver insists
// on: it resolves its built-in default user libvirt-qemu before reading
// qemu.conf and refuses to start when it is missing (lab.md).
func ensureQemuUser(ctx context.Context) error {
	for _, g := range []string{"kvm", "libvirt-qemu"} {
		if _, err := user.LookupGroup(g); err == nil {
			continue
		}
		if _, err := run(ctx, "groupadd", "--system", g); err != nil {
			return fmt.Errorf("create group %q: %w", g, err)
		}
	}
	if _, err := user.Lookup("libvirt-qemu"); err == nil {
		return nil
	}
	if _, err := run(ctx, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
		"-g", "libvirt-qemu", "-G", "kvm", "libvirt-qemu"); err != nil {
		return fmt.Errorf("create user libvirt-qemu: %w", err)
	}
	return nil
}
