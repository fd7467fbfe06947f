package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// bootGuest defines and starts a diskless lab guest on h whose CPU model is
// pinned to the hosts' model as the mesh reports it (the mesh's cpu-model
// check refuses libvirt's default qemu64 guest, as oVirt pins a cluster CPU
// type), and waits until its workload prints its first counter.
func (m *mesh) bootGuest(ctx context.Context, h *lab.Host, spec lab.GuestSpec, bootWithin time.Duration) (*lab.Guest, error) {
	if spec.VCPUs == 0 {
		spec.VCPUs = 1
	}
	kernel, initrd, err := m.lab.GuestImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	g := &lab.Guest{Spec: spec, Host: h, ConsoleLog: filepath.Join(m.lab.SharedDir, "console", spec.Name+".log")}
	if err := os.MkdirAll(filepath.Dir(g.ConsoleLog), 0o755); err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	if err := os.Remove(g.ConsoleLog); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	port := uint(0)
	sum := sha256.Sum256([]byte(spec.Name))
	dom := &libvirtxml.Domain{
		Type: "qemu", Name: spec.Name,
		Memory: &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)},
		CPU:    &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Model: &libvirtxml.DomainCPUModel{Value: m.cpuModel, Fallback: "forbid"}},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel: kernel, Initrd: initrd,
			Cmdline: fmt.Sprintf("console=ttyS0 quiet loglevel=3 panic=-1 hm.name=%s hm.fill=%d hm.dirty=%d", spec.Name, spec.FillMiB, spec.DirtyMiBps),
		},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Emulator: "/usr/bin/qemu-system-x86_64",
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: g.ConsoleLog, Append: "on"}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])},
				Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: lab.VMBridge}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if g.XML, err = dom.Marshal(); err != nil {
		return nil, fmt.Errorf("domain XML of guest %s: %w", spec.Name, err)
	}
	xmlPath := filepath.Join(h.StateDir, spec.Name+".xml")
	if err := os.WriteFile(xmlPath, []byte(g.XML), 0o644); err != nil {
		return nil, fmt.Errorf("guest %s: %w", spec.Name, err)
	}
	if out, err := h.Virsh(ctx, "define", xmlPath); err != nil {
		return nil, fmt.Errorf("define guest %s on %s: %w (%s)", spec.Name, h.Name, err, out)
	}
	if out, err := h.Virsh(ctx, "start", spec.Name); err != nil {
		return nil, fmt.Errorf("start guest %s on %s: %w (%s)", spec.Name, h.Name, err, out)
	}
	// A guest too small for its kernel panics and is destroyed (on_crash,
	// panic=-1): stop waiting as soon as the domain is gone.
	_, err = benchkit.Poll(bootWithin, 250*time.Millisecond, "guest "+spec.Name+" to boot", func() bool {
		if c, err := g.LastCounter(); err == nil && c >= 1 {
			return true
		}
		if st, err := h.Virsh(ctx, "domstate", spec.Name); err != nil || !strings.Contains(st, "running") {
			return true
		}
		return false
	})
	if c, cerr := g.LastCounter(); err != nil || cerr != nil || c < 1 {
		return g, fmt.Errorf("guest %s (%d MiB) on %s did not boot (console %s): %v", spec.Name, spec.MemoryMiB, h.Name, g.ConsoleLog, err)
	}
	return g, nil
}

// removeGuest destroys and undefines a guest wherever it is.
func (m *mesh) removeGuest(ctx context.Context, name string) {
	for _, h := range m.lab.Hosts {
		_, _ = h.Virsh(ctx, "destroy", name)
		_, _ = h.Virsh(ctx, "undefine", name)
	}
}

// virshMigrate moves a guest from src to dst with virsh as an operator would
// without the mesh: peer to peer over qemu+tls, persistent, source
// undefined, memory on the migration network and encrypted (--tls, as the
// mesh's default transport), the same bandwidth cap and the same initial
// allowed downtime and auto-converge as the mesh's default policy.
func virshMigrate(ctx context.Context, src, dst *lab.Host, name string, bwMiB int, extra ...string) (time.Duration, error) {
	if out, err := src.Virsh(ctx, "migrate-setmaxdowntime", name, "100"); err != nil {
		return 0, fmt.Errorf("set max downtime of %s on %s: %w (%s)", name, src.Name, err, out)
	}
	args := []string{"migrate", "--live", "--p2p", "--persistent", "--undefinesource", "--unsafe", "--tls"}
	if bwMiB > 0 {
		args = append(args, "--bandwidth", strconv.Itoa(bwMiB))
	}
	args = append(args, extra...)
	args = append(args, name, dst.LibvirtURI, "tcp://"+dst.MigIP)
	start := time.Now()
	out, err := src.Virsh(ctx, args...)
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("virsh migrate %s %s → %s: %w (%s)", name, src.Name, dst.Name, err, out)
	}
	return took, nil
}

// completedJob reads `virsh domjobinfo --completed --rawstats` on the
// destination: the downtime (ms) and memory bytes libvirt sent.
func completedJob(ctx context.Context, dst *lab.Host, name string) (downtimeMs, memBytes uint64, err error) {
	out, err := dst.Virsh(ctx, "domjobinfo", "--completed", "--rawstats", name)
	if err != nil {
		return 0, 0, fmt.Errorf("completed job of %s on %s: %w", name, dst.Name, err)
	}
	fields := map[string]uint64{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			fields[strings.TrimSpace(k)] = n
		}
	}
	d, ok := fields["downtime"]
	if !ok {
		return 0, 0, fmt.Errorf("completed job of %s on %s: no downtime in:\n%s", name, dst.Name, out)
	}
	return d, fields["memory_processed"], nil
}

// migTx is the bytes host h has sent on its migration interface.
func migTx(h *lab.Host) (uint64, error) {
	_, tx, err := h.IfaceBytes(lab.MigIface)
	return tx, err
}
