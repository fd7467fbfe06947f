package lab

import (
	"crypto/sha256"
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// domainXML builds the libvirt domain of a lab guest: software emulation
// (type 'qemu': KVM guests hang on this machine, see lab.md), direct kernel
// boot of the lab's image, the serial console appended to a file on shared
// storage (so the destination keeps writing the same log), one virtio NIC on
// the host's VM bridge (or spec.Bridge), an optional pinned CPU model and an
// optional virtio disk.
func domainXML(spec GuestSpec, kernel, initrd, consoleLog, diskPath string) (string, error) {
	cmdline := fmt.Sprintf("console=ttyS0 quiet loglevel=3 panic=-1 hm.name=%s hm.fill=%d hm.dirty=%d",
		spec.Name, spec.FillMiB, spec.DirtyMiBps)
	if spec.IP != "" {
		cmdline += " hm.ip=" + spec.IP + "/24"
	}
	if spec.FillMarker != "" {
		cmdline += " hm.marker=" + spec.FillMarker
	}
	bridge := spec.Bridge
	if bridge == "" {
		bridge = VMBridge
	}
	port := uint(0)
	dom := &libvirtxml.Domain{
		Type:   "qemu",
		Name:   spec.Name,
		Memory: &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  kernel,
			Initrd:  initrd,
			Cmdline: cmdline,
		},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Emulator: "/usr/bin/qemu-system-x86_64",
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{
					File: &libvirtxml.DomainChardevSourceFile{Path: consoleLog, Append: "on"},
				},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC: &libvirtxml.DomainInterfaceMAC{Address: guestMAC(spec.Name)},
				Source: &libvirtxml.DomainInterfaceSource{
					Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: bridge},
				},
				Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if spec.CPUModel != "" {
		dom.CPU = &libvirtxml.DomainCPU{Mode: "custom", Match: "exact",
			Model: &libvirtxml.DomainCPUModel{Value: spec.CPUModel, Fallback: "forbid"}}
		for _, f := range spec.CPUFeatures {
			dom.CPU.Features = append(dom.CPU.Features, libvirtxml.DomainCPUFeature{Policy: "require", Name: f})
		}
	}
	if diskPath != "" {
		dom.Devices.Disks = []libvirtxml.DomainDisk{{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Cache: spec.DiskCache},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: diskPath}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}}
	}
	s, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain xml of guest %q: %w", spec.Name, err)
	}
	return s, nil
}

// guestMAC derives a stable locally administered MAC from the guest name.
func guestMAC(name string) string {
	s := sha256.Sum256([]byte(name))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", s[0], s[1], s[2])
}
