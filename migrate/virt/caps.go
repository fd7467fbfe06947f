package virt

import (
	"context"
	"fmt"
	"slices"

	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/migrate"
)

// Capabilities reports the host CPU (from the capabilities XML, so it is the
// model and flags libvirt itself would compare against a guest's CPU) and
// memory and CPU counts from virNodeGetInfo / virNodeGetFreeMemory.
func (h *Hypervisor) Capabilities(ctx context.Context) (migrate.Capabilities, error) {
	if err := ctx.Err(); err != nil {
		return migrate.Capabilities{}, err
	}
	capsXML, err := h.conn.GetCapabilities()
	if err != nil {
		return migrate.Capabilities{}, wrap(err, "capabilities of %s", h.uri)
	}
	c, err := parseCaps(capsXML)
	if err != nil {
		return migrate.Capabilities{}, fmt.Errorf("capabilities of %s: %w", h.uri, err)
	}
	info, err := h.conn.GetNodeInfo()
	if err != nil {
		return migrate.Capabilities{}, wrap(err, "node info of %s", h.uri)
	}
	free, err := h.conn.GetFreeMemory()
	if err != nil {
		return migrate.Capabilities{}, wrap(err, "free memory of %s", h.uri)
	}
	// Both virtualization types: a host runs what either can (TCG in the
	// lab, KVM on real hosts); a failure only leaves the list shorter.
	for _, vt := range []string{"kvm", "qemu"} {
		if models, err := h.usableCPUModels(c.Arch, vt); err == nil {
			for _, m := range models {
				if !slices.Contains(c.CPUModels, m) {
					c.CPUModels = append(c.CPUModels, m)
				}
			}
		}
	}
	c.MemTotalMiB = info.Memory / 1024  // KiB
	c.MemFreeMiB = free / (1024 * 1024) // bytes
	c.CPUs = int(info.Cpus)
	return c, nil
}

// parseCaps reads arch, CPU model and feature flags from capabilities XML.
func parseCaps(capsXML string) (migrate.Capabilities, error) {
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return migrate.Capabilities{}, fmt.Errorf("parse capabilities XML: %w", err)
	}
	var c migrate.Capabilities
	if cpu := caps.Host.CPU; cpu != nil {
		c.Arch = cpu.Arch
		c.CPUModel = cpu.Model
		for _, f := range cpu.FeatureFlags {
			c.CPUFlags = append(c.CPUFlags, f.Name)
		}
	}
	return c, nil
}
