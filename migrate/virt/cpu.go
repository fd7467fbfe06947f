package virt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

var _ migrate.CPUDefiner = (*Hypervisor)(nil)

// SetVirtType sets the virtualization type the host's guests run with:
// "kvm" (the default) or "qemu" (TCG emulation, what the lab runs). The
// CPU a guest can get depends on it (TCG emulates its own feature set), so
// the host's CPU definition, the baseline and the comparisons use it.
func (h *Hypervisor) SetVirtType(t string) error {
	if t != "kvm" && t != "qemu" {
		return fmt.Errorf("virt type %q of %s: neither kvm nor qemu", t, h.uri)
	}
	h.virtType = t
	return nil
}

func (h *Hypervisor) vt() string {
	if h.virtType == "" {
		return "kvm"
	}
	return h.virtType
}

// HostCPU implements migrate.CPUDefiner: the host-model CPU of the
// domain capabilities (virConnectGetDomainCapabilities), the CPU libvirt
// gives a guest with mode host-model here, written as a custom CPU. Not
// the capabilities' host CPU: that is the physical CPU, with features no
// guest can get (and none of TCG's).
func (h *Hypervisor) HostCPU(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	doc, err := h.conn.GetDomainCapabilities("", "", "", h.vt(), 0)
	if err != nil {
		return "", wrap(err, "domain capabilities of %s (%s)", h.uri, h.vt())
	}
	x, err := hostModelOf(doc)
	if err != nil {
		return "", fmt.Errorf("host CPU of %s (%s): %w", h.uri, h.vt(), err)
	}
	return x, nil
}

// hostModelOf reads the host-model mode of domain capabilities.
func hostModelOf(doc string) (string, error) {
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(doc); err != nil {
		return "", fmt.Errorf("parse domain capabilities: %w", err)
	}
	if dc.CPU == nil {
		return "", errors.New("domain capabilities have no CPU")
	}
	for _, m := range dc.CPU.Modes {
		if m.Name != "host-model" || m.Supported != "yes" || len(m.Models) == 0 {
			continue
		}
		var req, dis []string
		for _, f := range m.Features {
			switch f.Policy {
			case "", "require", "force":
				req = append(req, f.Name)
			case "disable", "forbid":
				dis = append(dis, f.Name)
			}
		}
		x := migrate.CustomCPUXML(m.Models[0].Name, m.Vendor, req, dis)
		if len(x) > fsm.MaxCPUXML {
			return "", fmt.Errorf("host-model CPU of %d bytes is over the limit of %d", len(x), fsm.MaxCPUXML)
		}
		return x, nil
	}
	return "", errors.New("domain capabilities offer no host-model CPU")
}

// BaselineCPU implements migrate.CPUDefiner with
// virConnectBaselineHypervisorCPU (MIGRATABLE: no feature that blocks
// migration; EXPAND_FEATURES: every feature listed, so the baseline's
// feature list is complete and two baselines compare by their lists).
func (h *Hypervisor) BaselineCPU(ctx context.Context, cpus []string) (migrate.CPUDef, error) {
	if err := ctx.Err(); err != nil {
		return migrate.CPUDef{}, err
	}
	x, err := h.conn.BaselineHypervisorCPU("", "", "", h.vt(), cpus,
		libvirt.CONNECT_BASELINE_CPU_MIGRATABLE|libvirt.CONNECT_BASELINE_CPU_EXPAND_FEATURES)
	if err != nil {
		return migrate.CPUDef{}, wrap(err, "baseline of %d CPUs on %s", len(cpus), h.uri)
	}
	d, err := migrate.ParseCPUDef(strings.TrimSpace(x))
	if err != nil {
		return migrate.CPUDef{}, fmt.Errorf("baseline of %d CPUs on %s: %w", len(cpus), h.uri, err)
	}
	return d, nil
}

// CompareCPU implements migrate.CPUDefiner with
// virConnectCompareHypervisorCPU and FAIL_INCOMPATIBLE, whose error says
// which features the host lacks ("Host CPU does not provide required
// features: aes, avx").
func (h *Hypervisor) CompareCPU(ctx context.Context, cpuXML string) (fsm.CPUVerdict, error) {
	if err := ctx.Err(); err != nil {
		return fsm.CPUVerdict{}, err
	}
	res, err := h.conn.CompareHypervisorCPU("", "", "", h.vt(), cpuXML, libvirt.CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE)
	var lerr libvirt.Error
	switch {
	case errors.As(err, &lerr) && lerr.Code == libvirt.ERR_CPU_INCOMPATIBLE:
		return verdictOf(lerr.Message), nil
	case err != nil:
		return fsm.CPUVerdict{}, wrap(err, "compare CPU on %s", h.uri)
	case res == libvirt.CPU_COMPARE_INCOMPATIBLE:
		return fsm.CPUVerdict{Reason: "libvirt: CPU incompatible"}, nil
	}
	return fsm.CPUVerdict{OK: true}, nil
}

// verdictOf reads libvirt's incompatibility message: the missing features
// when it names them, the message otherwise.
func verdictOf(msg string) fsm.CPUVerdict {
	const key = "required features: "
	i := strings.Index(msg, key)
	if i < 0 {
		return fsm.CPUVerdict{Reason: truncate(msg, 1024)}
	}
	var miss []string
	for _, f := range strings.Split(msg[i+len(key):], ",") {
		f = strings.TrimSpace(f)
		if f == "" || fsm.CheckName("CPU feature", f) != nil {
			continue
		}
		miss = append(miss, f)
		if len(miss) == fsm.MaxList {
			break
		}
	}
	if len(miss) == 0 {
		return fsm.CPUVerdict{Reason: truncate(msg, 1024)}
	}
	return fsm.CPUVerdict{Missing: migrate.MissingFeatures(miss, nil)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
