package virt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// usableCPUModels lists the guest CPU models this host can run, from the
// domain capabilities' custom mode (models marked usable="yes"). The mesh
// checks a guest's model against the destination's list, as oVirt checks a
// cluster CPU type against each host.
func (h *Hypervisor) usableCPUModels(arch, virtType string) ([]string, error) {
	doc, err := h.conn.GetDomainCapabilities("", arch, "", virtType, 0)
	if err != nil {
		return nil, wrap(err, "domain capabilities of %s (%s)", h.uri, virtType)
	}
	return parseUsableModels(doc)
}

func parseUsableModels(doc string) ([]string, error) {
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse domain capabilities: %w", err)
	}
	var out []string
	if dc.CPU == nil {
		return nil, nil
	}
	for _, mode := range dc.CPU.Modes {
		if mode.Name != "custom" || mode.Supported != "yes" {
			continue
		}
		for _, m := range mode.Models {
			if m.Usable == "yes" {
				out = append(out, m.Name)
			}
		}
	}
	return out, nil
}
