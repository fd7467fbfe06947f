package node

import (
	"context"
	"slices"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// FuzzHostCPUDefinition: the CPU definition a host gossips is untrusted
// bytes. Whatever they are, the state's validation either refuses them or
// the rest of the path holds: the parser returns a definition whose names
// the state can hold (and that writes back to the same definition), the
// baseline and comparison refuse it with an error or answer with a verdict
// that itself passes validation when gossiped, and hostHealth never panics.
func FuzzHostCPUDefinition(f *testing.F) {
	f.Add(migrate.CustomCPUXML("Haswell", "Intel", []string{"aes", "avx2"}, []string{"x2apic"}))
	f.Add("<cpu mode='host-model'><model fallback='allow'>Skylake-Server</model><feature policy='optional' name='pcid'/></cpu>")
	f.Add("<cpu><model>Icelake-Server</model><feature policy='bogus' name='x'/></cpu>")
	f.Add("<cpu><feature name='a b'/></cpu>")
	f.Add("<domain><cpu/></domain>")
	f.Add("")
	reg := sim.NewRegistry(sim.Config{TimeScale: 1000})
	h, err := reg.AddHost(sim.HostSpec{Name: "h1", CPUModel: "Cascadelake-Server", MemTotalMiB: 1024, CPUs: 2})
	if err != nil {
		f.Fatal(err)
	}
	own, _ := h.HostCPU(context.Background())
	f.Fuzz(func(t *testing.T, x string) {
		facts := fsm.HostFacts{Name: "h2", Cluster: "c1", CPUXML: x}
		data, err := fsm.Encode(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: facts, At: fuzzAt})
		if err != nil || fsm.Validate(data) != nil {
			return // refused before the log: nothing else sees it
		}
		ctx := context.Background()
		if d, err := migrate.ParseCPUDef(x); err == nil {
			for _, n := range append(slices.Clone(d.Features), d.Disabled...) {
				if fsm.CheckName("feature", n) != nil {
					t.Fatalf("parsed feature %q the state cannot hold", n)
				}
			}
			again, err := migrate.ParseCPUDef(migrate.CustomCPUXML(d.Model, d.Vendor, d.Features, d.Disabled))
			if d.Model != "" && (err != nil || again.Model != d.Model || !slices.Equal(again.Features, d.Features) || !slices.Equal(again.Disabled, d.Disabled)) {
				t.Fatalf("definition does not write back: %+v -> %+v, %v", d, again, err)
			}
		}
		if v, err := h.CompareCPU(ctx, x); err == nil {
			v.Digest = fsm.CPUDigest(x)
			if v.Digest == "" {
				v.Digest = "empty"
			}
			facts.CPUVerdicts = []fsm.CPUVerdict{v}
			data, err := fsm.Encode(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: facts, At: fuzzAt})
			if err != nil || fsm.Validate(data) != nil {
				t.Fatalf("a verdict on a valid definition does not validate: %+v: %v", v, fsm.Validate(data))
			}
			cl := fsm.DefaultCluster("c1")
			cl.CPUBaselineXML, cl.CPUBaselineModel = x, "m"
			_, _ = hostHealth(facts, cl)
		}
		if b, err := h.BaselineCPU(ctx, []string{own, x}); err == nil {
			if _, err := h.CompareCPU(ctx, b.XML); err != nil {
				t.Fatalf("the baseline of %q does not compare: %v", x, err)
			}
		}
	})
}
