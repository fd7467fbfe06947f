package lab

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// initScript is the guest's /init.
//
//go:embed init.sh
var initScript string

// kernelMetaPackage names the Debian package whose dependency is the current
// cloud kernel: small, with virtio drivers as modules.
const kernelMetaPackage = "linux-image-cloud-amd64"

// agentPackage is the workload program put into the initramfs.
const agentPackage = "github.com/hostmesh/hostmesh/testcluster/lab/guestagent"

// guestModules are the virtio modules init.sh inserts, in that order.
var guestModules = []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
	"virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"}

// GuestImage returns the kernel and initramfs every lab guest boots. The
// kernel package is downloaded once and kept under Dir/image; the initramfs
// is rebuilt once per Lab so it always carries the current guestagent. Both
// paths are the same in every host.
func (l *Lab) GuestImage(ctx context.Context) (kernel, initrd string, err error) {
	l.imageOnce.Do(func() {
		l.kernel, l.initrd, l.imageErr = builtImage(ctx, filepath.Join(l.Dir, "image"))
	})
	return l.kernel, l.initrd, l.imageErr
}

// images remembers the images this process built, by directory, so that a
// test binary starting several labs in a row builds the initramfs once.
var images = struct {
	sync.Mutex
	built map[string][2]string
}{built: map[string][2]string{}}

func builtImage(ctx context.Context, dir string) (kernel, initrd string, err error) {
	images.Lock()
	defer images.Unlock()
	if img, ok := images.built[dir]; ok && exists(img[0]) && exists(img[1]) {
		return img[0], img[1], nil
	}
	kernel, initrd, err = buildImage(ctx, dir)
	if err == nil {
		images.built[dir] = [2]string{kernel, initrd}
	}
	return kernel, initrd, err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func buildImage(ctx context.Context, dir string) (kernel, initrd string, err error) {
	kdir, err := fetchKernel(ctx, dir)
	if err != nil {
		return "", "", fmt.Errorf("guest image: %w", err)
	}
	kernels, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return "", "", fmt.Errorf("guest image: want one kernel in %s/boot, found %v", kdir, kernels)
	}
	initrd, err = buildInitrd(ctx, dir, kdir)
	if err != nil {
		return "", "", fmt.Errorf("guest image: %w", err)
	}
	return kernels[0], initrd, nil
}

// fetchKernel downloads and unpacks the cloud kernel package into
// dir/kernel-<version> unless it is already there.
func fetchKernel(ctx context.Context, dir string) (string, error) {
	deps, err := run(ctx, "apt-cache", "depends", kernelMetaPackage)
	if err != nil {
		return "", fmt.Errorf("find kernel package: %w", err)
	}
	pkg := ""
	for _, line := range strings.Split(deps, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			pkg = f[1]
			break
		}
	}
	if pkg == "" {
		return "", fmt.Errorf("find kernel package: %s has no linux-image dependency (run apt-get update?): %s", kernelMetaPackage, deps)
	}
	kdir := filepath.Join(dir, pkg)
	if _, err := os.Stat(filepath.Join(kdir, ".done")); err == nil {
		return kdir, nil
	}
	dl := filepath.Join(dir, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = dl
	if _, err := runCmd(cmd); err != nil {
		return "", fmt.Errorf("download kernel %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("download kernel %s: no .deb in %s", pkg, dl)
	}
	if err := os.RemoveAll(kdir); err != nil {
		return "", err
	}
	if _, err := run(ctx, "dpkg", "-x", debs[0], kdir); err != nil {
		return "", fmt.Errorf("unpack kernel %s: %w", pkg, err)
	}
	_ = os.RemoveAll(dl)
	if err := os.WriteFile(filepath.Join(kdir, ".done"), nil, 0o644); err != nil {
		return "", err
	}
	return kdir, nil
}

// buildInitrd assembles busybox, init.sh, the virtio modules and a freshly
// built guestagent into a gzip'ed newc cpio archive.
func buildInitrd(ctx context.Context, dir, kdir string) (string, error) {
	root, err := os.MkdirTemp(dir, "initrd-root-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil { // becomes the guest's /
		return "", err
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib/modules"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static not installed: %w", err)
	}
	if err := copyFile(bb, filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(initScript), 0o755); err != nil {
		return "", err
	}
	for _, m := range guestModules {
		found, _ := filepath.Glob(filepath.Join(kdir, "lib", "modules", "*", "kernel", "*", "*", m+".ko"))
		found2, _ := filepath.Glob(filepath.Join(kdir, "lib", "modules", "*", "kernel", "*", m+".ko"))
		found = append(found, found2...)
		if len(found) != 1 {
			return "", fmt.Errorf("kernel module %s: found %v in %s", m, found, kdir)
		}
		if err := copyFile(found[0], filepath.Join(root, "lib", "modules", m+".ko"), 0o644); err != nil {
			return "", err
		}
	}
	if err := buildAgent(ctx, filepath.Join(root, "bin", "hm-agent")); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "initrd.gz")
	tmp := root + ".gz"
	cmd := exec.CommandContext(ctx, "sh", "-c", "find . | cpio -o -H newc --quiet | gzip -1 > "+shellQuote(tmp))
	cmd.Dir = root
	if _, err := runCmd(cmd); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("pack initramfs: %w", err)
	}
	// Rename is atomic: a QEMU starting meanwhile reads the old or the new
	// file, never half of one.
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// buildAgent compiles guestagent as a static binary for the guest.
func buildAgent(ctx context.Context, out string) error {
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, agentPackage)
	// Build from the lab's source directory when it is known (so the module
	// is found wherever the caller runs), else from the working directory.
	if st, err := os.Stat(filepath.Dir(self)); err == nil && st.IsDir() {
		cmd.Dir = filepath.Dir(self)
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if _, err := runCmd(cmd); err != nil {
		return fmt.Errorf("build guestagent: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
