package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// The sim's CPUs follow libvirt's CPU map in miniature: a CPU model is a
// named set of features (each model here has every feature of the one
// before it, as the x86 models of one vendor do), a CPU definition is a
// model plus required and disabled features, the baseline of several
// definitions is the intersection of their features expressed with the
// most capable model all of them contain, and a comparison names the
// features the host lacks. The feature names are libvirt's.

// cpuModels lists the sim's models, least capable first.
var cpuModels = []struct {
	name     string
	features []string
}{
	{"qemu64", baseFeatures},
	{"Westmere", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq")},
	{"SandyBridge", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq",
		"avx", "xsave", "tsc-deadline", "x2apic")},
	{"Haswell", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq",
		"avx", "xsave", "tsc-deadline", "x2apic", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "rdrand", "erms", "invpcid", "fsgsbase", "smep")},
	{"Skylake-Server", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq",
		"avx", "xsave", "tsc-deadline", "x2apic", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "rdrand", "erms", "invpcid", "fsgsbase", "smep",
		"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx", "rdseed", "smap", "clflushopt", "clwb", "xsavec", "pku")},
	{"Cascadelake-Server", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq",
		"avx", "xsave", "tsc-deadline", "x2apic", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "rdrand", "erms", "invpcid", "fsgsbase", "smep",
		"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx", "rdseed", "smap", "clflushopt", "clwb", "xsavec", "pku", "avx512vnni")},
	{"Icelake-Server", union(baseFeatures, "ssse3", "sse4.1", "sse4.2", "popcnt", "aes", "pclmuldq",
		"avx", "xsave", "tsc-deadline", "x2apic", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "rdrand", "erms", "invpcid", "fsgsbase", "smep",
		"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx", "rdseed", "smap", "clflushopt", "clwb", "xsavec", "pku", "avx512vnni",
		"avx512vbmi", "gfni", "vaes", "vpclmulqdq", "sha-ni")},
}

var baseFeatures = []string{"fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca",
	"cmov", "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "lm", "syscall", "nx", "lahf_lm"}

func union(base []string, more ...string) []string {
	out := append(slices.Clone(base), more...)
	slices.Sort(out)
	return slices.Compact(out)
}

// modelFeatures returns a model's features, false for a model the sim
// does not know.
func modelFeatures(name string) ([]string, bool) {
	for _, m := range cpuModels {
		if m.name == name {
			return m.features, true
		}
	}
	return nil, false
}

// KnownCPUModel says whether the sim's CPU map has the model.
func KnownCPUModel(name string) bool {
	_, ok := modelFeatures(name)
	return ok
}

// fullFeatures is every feature a definition provides: its model's, plus
// the required ones, minus the disabled ones.
func fullFeatures(d migrate.CPUDef) ([]string, error) {
	base, ok := modelFeatures(d.Model)
	if !ok {
		return nil, fmt.Errorf("%w: unknown CPU model %q", migrate.ErrCPUXML, d.Model)
	}
	out := union(base, d.Features...)
	return slices.DeleteFunc(out, func(f string) bool { return slices.Contains(d.Disabled, f) }), nil
}

// hostCPUXML is the host's definition: its model and its extra flags.
func (h *Host) hostCPUXML() string {
	h.mu.Lock()
	model, flags := h.spec.CPUModel, h.spec.CPUFlags
	h.mu.Unlock()
	if !KnownCPUModel(model) {
		return ""
	}
	return migrate.CustomCPUXML(model, "", flags, nil)
}

// HostCPU implements migrate.CPUDefiner. A host whose model the sim's map
// does not know has no definition ("").
func (h *Host) HostCPU(context.Context) (string, error) { return h.hostCPUXML(), nil }

// BaselineCPU implements migrate.CPUDefiner: the intersection of the
// definitions' features, named with the most capable model whose features
// it holds, every feature listed (as libvirt's EXPAND_FEATURES).
func (h *Host) BaselineCPU(_ context.Context, cpus []string) (migrate.CPUDef, error) {
	if len(cpus) == 0 {
		return migrate.CPUDef{}, fmt.Errorf("%w: baseline of no CPU", migrate.ErrCPUXML)
	}
	var common []string
	for i, x := range cpus {
		d, err := migrate.ParseCPUDef(x)
		if err != nil {
			return migrate.CPUDef{}, fmt.Errorf("baseline CPU %d: %w", i, err)
		}
		full, err := fullFeatures(d)
		if err != nil {
			return migrate.CPUDef{}, fmt.Errorf("baseline CPU %d: %w", i, err)
		}
		if i == 0 {
			common = full
			continue
		}
		common = slices.DeleteFunc(common, func(f string) bool { return !slices.Contains(full, f) })
	}
	model := ""
	for _, m := range cpuModels {
		if len(migrate.MissingFeatures(m.features, common)) == 0 {
			model = m.name
		}
	}
	if model == "" {
		return migrate.CPUDef{}, fmt.Errorf("%w: no CPU model fits the common features %v", migrate.ErrCPUXML, common)
	}
	xml := migrate.CustomCPUXML(model, "", common, nil)
	return migrate.CPUDef{XML: xml, Model: model, Features: common}, nil
}

// CompareCPU implements migrate.CPUDefiner: the features of the definition
// this host's CPU lacks.
func (h *Host) CompareCPU(_ context.Context, cpuXML string) (fsm.CPUVerdict, error) {
	d, err := migrate.ParseCPUDef(cpuXML)
	if err != nil {
		return fsm.CPUVerdict{}, err
	}
	want, err := fullFeatures(d)
	if err != nil {
		return fsm.CPUVerdict{OK: false, Reason: err.Error()}, nil
	}
	hd, err := migrate.ParseCPUDef(h.hostCPUXML())
	if err != nil {
		return fsm.CPUVerdict{OK: false, Reason: fmt.Sprintf("host %s has no CPU definition (its model is not in the sim's map)", h.spec.Name)}, nil
	}
	have, err := fullFeatures(hd)
	if err != nil {
		return fsm.CPUVerdict{}, err
	}
	if miss := migrate.MissingFeatures(want, have); len(miss) > 0 {
		return fsm.CPUVerdict{Missing: miss}, nil
	}
	return fsm.CPUVerdict{OK: true}, nil
}

var _ migrate.CPUDefiner = (*Host)(nil)

// vmCPUXML is a guest's definition: its model and required flags, when
// the model is one the sim knows (else the guest has none, as a guest of
// libvirt's default CPU, and the checks use its flag list).
func vmCPUXML(s VMSpec) string {
	if !KnownCPUModel(s.CPUModel) {
		return ""
	}
	return migrate.CustomCPUXML(s.CPUModel, "", s.CPUFlags, nil)
}

// SetCPU gives the host another CPU: a model of the sim's map and extra
// flags. For tests of mixed clusters; call it before a meshd uses the host.
func (h *Host) SetCPU(model string, flags []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spec.CPUModel, h.spec.CPUFlags = model, slices.Clone(flags)
}
