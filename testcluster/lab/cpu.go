package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hosts of different CPUs under TCG. Every lab host runs the same QEMU on
// the same machine, so each would offer the same CPU. A host given
// Config.TCGWithout offers a TCG CPU without those features, as libvirt
// itself sees it: libvirt keeps what it probed of QEMU (the CPU properties
// TCG can emulate, <hostCPU type='tcg'>) in its capabilities cache, which
// the lab gives each host in a directory of its own; the lab turns the
// features off there and restarts the host's libvirtd, which takes the
// cache as valid (it checks the binaries' times, the kernel and the CPU
// signature, not the content). The host's domain capabilities, its
// host-model CPU and virConnectCompareHypervisorCPU then answer for a CPU
// without them: real libvirt answers, on a CPU the machine does not have.

// maskedCacheDir keeps a masked host's cache apart from the plain one
// (which survives labs to save QEMU's probing), named by the features.
func maskedCacheDir(dir, host string, without []string) string {
	return filepath.Join(dir, "cache", host+"-without-"+strings.Join(without, "-"))
}

// seedCache copies the host's plain cache into its masked one when the
// masked one is empty, so libvirt need not probe QEMU again.
func (h *Host) seedCache(plain string) error {
	src := filepath.Join(plain, "qemu", "capabilities")
	dst := filepath.Join(h.CacheDir, "qemu", "capabilities")
	if ents, _ := os.ReadDir(dst); len(ents) > 0 {
		return nil
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil // nothing probed yet: libvirtd probes
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("host %s: seed capabilities cache: %w", h.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return fmt.Errorf("host %s: seed capabilities cache: %w", h.Name, err)
		}
	}
	return nil
}

// maskTCGFeatures turns the features off in the host's cached TCG CPU
// (probing QEMU first if the cache is empty) and restarts libvirtd when it
// changed anything.
func (h *Host) maskTCGFeatures(ctx context.Context, without []string) error {
	if _, err := h.Virsh(ctx, "domcapabilities", "--virttype", "qemu"); err != nil {
		return fmt.Errorf("host %s: probe QEMU: %w", h.Name, err)
	}
	files, err := filepath.Glob(filepath.Join(h.CacheDir, "qemu", "capabilities", "*.xml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("host %s: no QEMU capabilities cache in %s", h.Name, h.CacheDir)
	}
	changed, found := false, false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if !strings.Contains(string(b), "<emulator>/usr/bin/qemu-system-x86_64</emulator>") {
			continue
		}
		found = true
		out, n, err := maskTCG(string(b), without)
		if err != nil {
			return fmt.Errorf("host %s: %s: %w", h.Name, f, err)
		}
		if n > 0 {
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			changed = true
		}
	}
	if !found {
		return fmt.Errorf("host %s: no cached capabilities of qemu-system-x86_64", h.Name)
	}
	if !changed {
		return nil
	}
	if err := h.stopLibvirtd(ctx); err != nil {
		return err
	}
	return h.startLibvirtd(ctx)
}

// maskTCG sets the listed boolean properties of the <hostCPU type='tcg'>
// section to false; it returns how many it changed, and fails when a
// feature is not there at all (a name QEMU does not know).
func maskTCG(doc string, without []string) (string, int, error) {
	start := strings.Index(doc, "<hostCPU type='tcg'")
	if start < 0 {
		return "", 0, fmt.Errorf("no TCG host CPU in the capabilities cache")
	}
	end := strings.Index(doc[start:], "</hostCPU>")
	if end < 0 {
		return "", 0, fmt.Errorf("TCG host CPU not closed")
	}
	sec := doc[start : start+end]
	n := 0
	for _, f := range without {
		re := regexp.MustCompile(`<property name='` + regexp.QuoteMeta(f) + `' type='boolean' value='(true|false)'[^>]*/>`)
		if !re.MatchString(sec) {
			return "", 0, fmt.Errorf("TCG host CPU has no feature %q", f)
		}
		sec = re.ReplaceAllStringFunc(sec, func(m string) string {
			if strings.Contains(m, "value='true'") {
				n++
			}
			return fmt.Sprintf("<property name='%s' type='boolean' value='false'/>", f)
		})
	}
	return doc[:start] + sec + doc[start+end:], n, nil
}

// stopLibvirtd stops the host's libvirtd and waits until it is gone.
func (h *Host) stopLibvirtd(ctx context.Context) error {
	pidFile := filepath.Join(h.StateDir, "run", "hm-libvirtd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("host %s: libvirtd pid: %w", h.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("host %s: libvirtd pid file says %q", h.Name, b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("host %s: stop libvirtd %d: %w", h.Name, pid, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(wctx, 100*time.Millisecond, "libvirtd of "+h.Name+" to exit", func() (bool, error) {
		if syscall.Kill(pid, 0) != nil {
			return true, nil
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// A zombie nobody reaped yet is gone too.
		return err != nil || strings.Contains(string(st), ") Z "), nil
	})
}

// validTCGWithout checks the option's host names.
func validTCGWithout(c Config) error {
	for name, fs := range c.TCGWithout {
		i, err := strconv.Atoi(strings.TrimPrefix(name, "h"))
		if !strings.HasPrefix(name, "h") || err != nil || i < 1 || i > c.Hosts {
			return fmt.Errorf("lab config: TCGWithout names host %q, not one of h1..h%d", name, c.Hosts)
		}
		if len(fs) == 0 || slices.ContainsFunc(fs, func(f string) bool { return !regexp.MustCompile(`^[a-z0-9_.-]+$`).MatchString(f) }) {
			return fmt.Errorf("lab config: TCGWithout of %s: %q", name, fs)
		}
	}
	return nil
}
