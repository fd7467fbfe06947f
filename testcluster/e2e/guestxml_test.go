package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// guestOpts are what lab.GuestSpec cannot express yet (see the report:
// GuestSpec.CPUModel and GuestSpec.Bridge would replace this file).
type guestOpts struct {
	// cpuModel pins the guest CPU model (<cpu mode='custom'>). Empty
	// leaves it to libvirt, which reports its default (qemu64) in the
	// live XML.
	cpuModel string
	// bridge is the host bridge the NIC joins; empty is lab.VMBridge.
	bridge string
}

// defineGuestWith is lab.DefineGuest with guestOpts: the same kernel,
// initramfs, kernel command line (hm.* words the guest agent reads), serial
// console on shared storage and disk placement, built here because the lab
// cannot yet pin a CPU model or pick a bridge.
func (m *mesh) defineGuestWith(ctx context.Context, h *lab.Host, spec lab.GuestSpec, o guestOpts) (*lab.Guest, error) {
	if spec.MemoryMiB == 0 {
		spec.MemoryMiB = 256
	}
	if spec.VCPUs == 0 {
		spec.VCPUs = 1
	}
	if spec.DiskCache == "" {
		spec.DiskCache = "none"
	}
	if spec.DiskSizeMiB == 0 {
		spec.DiskSizeMiB = 64
	}
	if o.bridge == "" {
		o.bridge = lab.VMBridge
	}
	kernel, initrd, err := m.lab.GuestImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("define guest %s on %s: %w", spec.Name, h.Name, err)
	}
	g := &lab.Guest{Spec: spec, Host: h, ConsoleLog: filepath.Join(m.lab.SharedDir, "console", spec.Name+".log")}
	if err := os.MkdirAll(filepath.Dir(g.ConsoleLog), 0o755); err != nil {
		return nil, fmt.Errorf("define guest %s: %w", spec.Name, err)
	}
	if err := os.Remove(g.ConsoleLog); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("define guest %s: %w", spec.Name, err)
	}
	switch spec.Disk {
	case lab.DiskShared:
		g.DiskPath = filepath.Join(m.lab.SharedDir, "disks", spec.Name+".qcow2")
	case lab.DiskLocal:
		g.DiskPath = filepath.Join(h.LocalDir, spec.Name+".qcow2")
	}
	if g.DiskPath != "" {
		if err := g.CreateDiskOn(ctx, h); err != nil {
			return nil, fmt.Errorf("define guest %s on %s: %w", spec.Name, h.Name, err)
		}
	}
	if g.XML, err = guestXML(spec, o, kernel, initrd, g.ConsoleLog, g.DiskPath); err != nil {
		return nil, err
	}
	xmlPath := filepath.Join(h.StateDir, spec.Name+".xml")
	if err := os.WriteFile(xmlPath, []byte(g.XML), 0o644); err != nil {
		return nil, fmt.Errorf("define guest %s: %w", spec.Name, err)
	}
	if _, err := h.Virsh(ctx, "define", xmlPath); err != nil {
		return nil, fmt.Errorf("define guest %s on %s: %w", spec.Name, h.Name, err)
	}
	if _, err := h.Virsh(ctx, "start", spec.Name); err != nil {
		return nil, fmt.Errorf("start guest %s on %s: %w", spec.Name, h.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := g.WaitCounter(wctx, 1); err != nil {
		return nil, fmt.Errorf("guest %s on %s did not boot (console %s): %w", spec.Name, h.Name, g.ConsoleLog, err)
	}
	return g, nil
}

// guestXML mirrors the lab's domain (TCG, direct kernel boot, serial console
// appended to a shared file, one virtio NIC, optional virtio disk) with the
// options added.
func guestXML(spec lab.GuestSpec, o guestOpts, kernel, initrd, console, disk string) (string, error) {
	cmdline := fmt.Sprintf("console=ttyS0 quiet loglevel=3 panic=-1 hm.name=%s hm.fill=%d hm.dirty=%d",
		spec.Name, spec.FillMiB, spec.DirtyMiBps)
	if spec.IP != "" {
		cmdline += " hm.ip=" + spec.IP + "/24"
	}
	port := uint(0)
	sum := sha256.Sum256([]byte(spec.Name))
	dom := &libvirtxml.Domain{
		Type:   "qemu",
		Name:   spec.Name,
		Memory: &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel: kernel, Initrd: initrd, Cmdline: cmdline,
		},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Emulator: "/usr/bin/qemu-system-x86_64",
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: console, Append: "on"}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])},
				Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: o.bridge}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if o.cpuModel != "" {
		dom.CPU = &libvirtxml.DomainCPU{Mode: "custom", Match: "exact",
			Model: &libvirtxml.DomainCPUModel{Value: o.cpuModel, Fallback: "forbid"}}
	}
	if disk != "" {
		dom.Devices.Disks = []libvirtxml.DomainDisk{{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Cache: spec.DiskCache},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}}
	}
	s, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain XML of guest %s: %w", spec.Name, err)
	}
	return s, nil
}
