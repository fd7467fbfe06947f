package virt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// CacheDefault is reported for a disk whose XML names no cache mode. QEMU's
// default (writeback) is unsafe to migrate, and naming it distinctly lets the
// mesh refuse it with a clear reason instead of treating "" as "none".
const CacheDefault = "default"

// maxVLAN is the largest 802.1Q VLAN ID.
const maxVLAN = 4095

// parseDomainXML reads the facts the prerequisite checks need from a domain
// XML. State and disk sizes are not in the XML; the caller adds them.
func parseDomainXML(domXML string) (migrate.Domain, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domXML); err != nil {
		return migrate.Domain{}, fmt.Errorf("parse domain XML: %w", err)
	}
	d := migrate.Domain{Name: x.Name, UUID: x.UUID}
	if x.Memory != nil {
		// <memory> is the maximum the guest may use, hence what the
		// destination must be able to hold.
		b, err := scaleBytes(uint64(x.Memory.Value), x.Memory.Unit, 1<<10)
		if err != nil {
			return migrate.Domain{}, fmt.Errorf("domain %q memory: %w", x.Name, err)
		}
		d.MemoryMiB = b >> 20
	}
	if x.VCPU != nil {
		// libvirt allows at most 16384 (QEMU fewer): more is no real
		// guest, and would wrap around to a negative int.
		if x.VCPU.Value > fsm.MaxCPUs {
			return migrate.Domain{}, fmt.Errorf("domain %q: %d vCPUs, over the limit of %d", x.Name, x.VCPU.Value, fsm.MaxCPUs)
		}
		d.VCPUs = int(x.VCPU.Value)
	}
	d.CPUModel, d.CPUFlags = cpuOf(x.CPU)
	d.CPUXML = cpuXMLOf(x.CPU)
	if x.Devices != nil {
		for _, iface := range x.Devices.Interfaces {
			if v := iface.VLan; v != nil && len(v.Tags) > 0 && v.Tags[0].ID > maxVLAN {
				return migrate.Domain{}, fmt.Errorf("domain %q NIC %d: VLAN tag %d is over %d", x.Name, len(d.NICs), v.Tags[0].ID, maxVLAN)
			}
			d.NICs = append(d.NICs, nicOf(iface))
		}
		for _, disk := range x.Devices.Disks {
			if disk.Device != "" && disk.Device != "disk" && disk.Device != "lun" {
				// CD-ROMs and floppies are read-only media: neither copied
				// nor subject to the cache-mode rule.
				continue
			}
			d.Disks = append(d.Disks, diskOf(disk))
		}
		d.HostDevices = hostDevicesOf(x.Devices)
	}
	return d, nil
}

// cpuOf returns the guest CPU model and the features it requires. A guest
// with mode host-model/host-passthrough and no model reports the mode, so a
// check can see it depends on the host CPU.
func cpuOf(cpu *libvirtxml.DomainCPU) (string, []string) {
	if cpu == nil {
		return "", nil
	}
	model := ""
	if cpu.Model != nil {
		model = cpu.Model.Value
	}
	if model == "" && cpu.Mode != "" && cpu.Mode != "custom" {
		model = cpu.Mode
	}
	var flags []string
	for _, f := range cpu.Features {
		// An absent policy means "require".
		if f.Policy == "" || f.Policy == "require" || f.Policy == "force" {
			flags = append(flags, f.Name)
		}
	}
	return model, flags
}

// cpuXMLOf is the guest's <cpu> element as libvirt wrote it, which the
// hosts compare with their hypervisor (CompareCPU); "" when the domain has
// none, or one too large for the state (then the flag lists judge it).
func cpuXMLOf(cpu *libvirtxml.DomainCPU) string {
	if cpu == nil || cpu.Mode == "host-passthrough" || cpu.Mode == "maximum" {
		return ""
	}
	x, err := cpu.Marshal()
	if err != nil || len(x) > fsm.MaxCPUXML {
		return ""
	}
	return x
}

// nicOf maps an interface to the network the destination must offer: the
// libvirt network name, else the bridge (or direct device) name.
func nicOf(iface libvirtxml.DomainInterface) fsm.NIC {
	var n fsm.NIC
	if iface.MAC != nil {
		n.MAC = iface.MAC.Address
	}
	if s := iface.Source; s != nil {
		switch {
		case s.Network != nil:
			n.Network = s.Network.Network
		case s.Bridge != nil:
			n.Network = s.Bridge.Bridge
		case s.Direct != nil:
			n.Network = s.Direct.Dev
		}
	}
	if iface.VLan != nil && len(iface.VLan.Tags) > 0 {
		n.VLAN = int(iface.VLan.Tags[0].ID) // at most maxVLAN: checked by the caller
	}
	return n
}

// diskOf maps a disk device. Source is the path (file or block device), or
// "pool/volume" or "protocol:name" for the other source kinds.
func diskOf(disk libvirtxml.DomainDisk) fsm.Disk {
	d := fsm.Disk{Cache: CacheDefault}
	if disk.Target != nil {
		d.Target = disk.Target.Dev
	}
	if disk.Driver != nil {
		d.Format = disk.Driver.Type
		if disk.Driver.Cache != "" {
			d.Cache = disk.Driver.Cache
		}
	}
	if s := disk.Source; s != nil {
		switch {
		case s.File != nil:
			d.Source = s.File.File
		case s.Block != nil:
			d.Source = s.Block.Dev
		case s.Volume != nil:
			d.Source = s.Volume.Pool + "/" + s.Volume.Volume
		case s.Network != nil:
			d.Source = s.Network.Protocol + ":" + s.Network.Name
		}
	}
	return d
}
