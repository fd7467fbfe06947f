package virt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// hostDevicesOf names the host devices a domain holds: every <hostdev>,
// and every <interface type='hostdev'> (an SR-IOV function handed to the
// guest). QEMU cannot migrate a guest holding one (the device and its
// state stay with the host), so the mesh reports such a VM not
// migratable instead of letting libvirt refuse each attempt.
func hostDevicesOf(devs *libvirtxml.DomainDeviceList) []string {
	if devs == nil {
		return nil
	}
	var out []string
	for _, h := range devs.Hostdevs {
		out = append(out, hostdevName(h))
	}
	for _, iface := range devs.Interfaces {
		if s := iface.Source; s != nil && s.Hostdev != nil {
			name := "sr-iov interface"
			if s.Hostdev.PCI != nil && s.Hostdev.PCI.Address != nil {
				name = "sr-iov pci " + pciAddr(s.Hostdev.PCI.Address)
			}
			out = append(out, name)
		}
	}
	return out
}

func hostdevName(h libvirtxml.DomainHostdev) string {
	switch {
	case h.SubsysPCI != nil:
		if s := h.SubsysPCI.Source; s != nil && s.Address != nil {
			return "pci " + pciAddr(s.Address)
		}
		return "pci"
	case h.SubsysUSB != nil:
		if s := h.SubsysUSB.Source; s != nil {
			if s.Vendor != nil && s.Product != nil {
				return "usb " + s.Vendor.ID + ":" + s.Product.ID
			}
			if s.Address != nil && s.Address.Bus != nil && s.Address.Device != nil {
				return fmt.Sprintf("usb %03d.%03d", *s.Address.Bus, *s.Address.Device)
			}
		}
		return "usb"
	case h.SubsysMDev != nil:
		if s := h.SubsysMDev.Source; s != nil && s.Address != nil {
			return "mdev " + s.Address.UUID
		}
		return "mdev"
	case h.SubsysSCSI != nil, h.SubsysSCSIHost != nil:
		return "scsi"
	case h.CapsStorage != nil, h.CapsMisc != nil, h.CapsNet != nil:
		return "capability"
	}
	return "hostdev"
}

func pciAddr(a *libvirtxml.DomainAddressPCI) string {
	v := func(p *uint) uint {
		if p == nil {
			return 0
		}
		return *p
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", v(a.Domain), v(a.Bus), v(a.Slot), v(a.Function))
}
