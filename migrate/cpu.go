package migrate

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// CPUDefiner is implemented by hypervisors that describe their host's CPU
// and compute and compare CPU definitions the way libvirt does; the mesh's
// cluster CPU baseline (fsm/cpu.go) is built on it. A hypervisor without
// it leaves the cpu-model check to the flag lists.
type CPUDefiner interface {
	// HostCPU returns the host's CPU definition: the CPU a guest gets
	// here with mode host-model, written as a <cpu mode='custom'> element
	// (model, vendor, features) that other hosts' libvirt can baseline
	// and compare.
	HostCPU(ctx context.Context) (string, error)
	// BaselineCPU computes the most capable CPU every one of the given
	// definitions offers, restricted to migratable features (libvirt:
	// virConnectBaselineHypervisorCPU with VIR_CONNECT_BASELINE_CPU_MIGRATABLE
	// and EXPAND_FEATURES, so the result lists every feature).
	BaselineCPU(ctx context.Context, cpus []string) (CPUDef, error)
	// CompareCPU says whether a guest with the given CPU definition can
	// run on this host (libvirt: virConnectCompareHypervisorCPU with
	// VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE); the verdict names the
	// features the host lacks. Its Digest is left empty. An error means
	// the comparison could not be made (a malformed definition), not that
	// the CPU is incompatible.
	CompareCPU(ctx context.Context, cpuXML string) (fsm.CPUVerdict, error)
}

// CPUDef is a CPU definition and what it names.
type CPUDef struct {
	XML      string
	Model    string
	Vendor   string
	Features []string // required (and forced) features
	Disabled []string // features the definition turns off
}

// ErrCPUXML marks a CPU definition that cannot be read.
var ErrCPUXML = errors.New("bad CPU definition")

type cpuXML struct {
	XMLName xml.Name `xml:"cpu"`
	Mode    string   `xml:"mode,attr"`
	Arch    string   `xml:"arch"`
	Model   struct {
		Name string `xml:",chardata"`
	} `xml:"model"`
	Vendor   string `xml:"vendor"`
	Features []struct {
		Policy string `xml:"policy,attr"`
		Name   string `xml:"name,attr"`
	} `xml:"feature"`
}

// ParseCPUDef reads a <cpu> element: the model, vendor and features by
// policy (absent is "require", as in libvirt). The bytes come from other
// hosts' gossip: they are bounded (fsm.MaxCPUXML) and every name must be
// one the state can hold (fsm.CheckName), else ErrCPUXML.
func ParseCPUDef(s string) (CPUDef, error) {
	if len(s) > fsm.MaxCPUXML {
		return CPUDef{}, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrCPUXML, len(s), fsm.MaxCPUXML)
	}
	var x cpuXML
	dec := xml.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&x); err != nil {
		return CPUDef{}, fmt.Errorf("%w: %v", ErrCPUXML, err)
	}
	d := CPUDef{XML: s, Model: strings.TrimSpace(x.Model.Name), Vendor: strings.TrimSpace(x.Vendor)}
	if d.Model != "" {
		if err := fsm.CheckName("CPU model", d.Model); err != nil {
			return CPUDef{}, fmt.Errorf("%w: %v", ErrCPUXML, err)
		}
	}
	if len(x.Features) > fsm.MaxList {
		return CPUDef{}, fmt.Errorf("%w: %d features, over the limit of %d", ErrCPUXML, len(x.Features), fsm.MaxList)
	}
	for _, f := range x.Features {
		if err := fsm.CheckName("CPU feature", f.Name); err != nil {
			return CPUDef{}, fmt.Errorf("%w: %v", ErrCPUXML, err)
		}
		switch f.Policy {
		case "", "require", "force":
			d.Features = append(d.Features, f.Name)
		case "disable", "forbid":
			d.Disabled = append(d.Disabled, f.Name)
		case "optional":
		default:
			return CPUDef{}, fmt.Errorf("%w: feature %s has unknown policy %q", ErrCPUXML, f.Name, f.Policy)
		}
	}
	slices.Sort(d.Features)
	d.Features = slices.Compact(d.Features)
	slices.Sort(d.Disabled)
	d.Disabled = slices.Compact(d.Disabled)
	return d, nil
}

// CustomCPUXML writes a CPU definition as a guest <cpu mode='custom'>
// element: the form the mesh gossips and libvirt baselines and compares.
// Features are written sorted, so that equal definitions are equal bytes
// (and have one digest).
func CustomCPUXML(model, vendor string, features, disabled []string) string {
	var b strings.Builder
	b.WriteString("<cpu mode='custom' match='exact'>\n")
	fmt.Fprintf(&b, "  <model fallback='forbid'>%s</model>\n", xmlEscape(model))
	if vendor != "" {
		fmt.Fprintf(&b, "  <vendor>%s</vendor>\n", xmlEscape(vendor))
	}
	for _, f := range sortedCopy(features) {
		fmt.Fprintf(&b, "  <feature policy='require' name='%s'/>\n", xmlEscape(f))
	}
	for _, f := range sortedCopy(disabled) {
		fmt.Fprintf(&b, "  <feature policy='disable' name='%s'/>\n", xmlEscape(f))
	}
	b.WriteString("</cpu>")
	return b.String()
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&#39;")
}

// MissingFeatures returns the features of want that have lacks, sorted.
func MissingFeatures(want, have []string) []string {
	var out []string
	for _, f := range want {
		if !slices.Contains(have, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
