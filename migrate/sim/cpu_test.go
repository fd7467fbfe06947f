package sim

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/migrate"
)

// TestCPUBaselineOfMixedModels: the baseline of Icelake, Cascadelake and
// Haswell hosts is Haswell with the features all three share; an Icelake
// guest compared on the Haswell host is refused naming the AVX-512
// features; the baseline runs on every host.
func TestCPUBaselineOfMixedModels(t *testing.T) {
	ctx := context.Background()
	r := NewRegistry(Config{TimeScale: 1000})
	specs := []HostSpec{
		{Name: "ice", CPUModel: "Icelake-Server", CPUFlags: []string{"hypervisor"}, MemTotalMiB: 4096, CPUs: 4},
		{Name: "cascade", CPUModel: "Cascadelake-Server", CPUFlags: []string{"hypervisor"}, MemTotalMiB: 4096, CPUs: 4},
		{Name: "haswell", CPUModel: "Haswell", CPUFlags: []string{"hypervisor", "sse4_2"}, MemTotalMiB: 4096, CPUs: 4},
	}
	var hosts []*Host
	var cpus []string
	for _, s := range specs {
		h, err := r.AddHost(s)
		if err != nil {
			t.Fatal(err)
		}
		x, err := h.HostCPU(ctx)
		if err != nil || x == "" {
			t.Fatalf("host CPU of %s: %q, %v", s.Name, x, err)
		}
		hosts, cpus = append(hosts, h), append(cpus, x)
	}
	b, err := hosts[0].BaselineCPU(ctx, cpus)
	if err != nil {
		t.Fatal(err)
	}
	haswell, _ := modelFeatures("Haswell")
	want := union(haswell, "hypervisor")
	if b.Model != "Haswell" || !slices.Equal(b.Features, want) {
		t.Fatalf("baseline %s %v, want Haswell %v", b.Model, b.Features, want)
	}
	for _, h := range hosts {
		v, err := h.CompareCPU(ctx, b.XML)
		if err != nil || !v.OK {
			t.Fatalf("baseline on %s: %+v, %v", h.Name(), v, err)
		}
	}
	guest := migrate.CustomCPUXML("Icelake-Server", "", nil, nil)
	v, err := hosts[2].CompareCPU(ctx, guest)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || !slices.Contains(v.Missing, "avx512f") || !slices.Contains(v.Missing, "gfni") || slices.Contains(v.Missing, "avx2") {
		t.Fatalf("Icelake guest on Haswell: %+v, want avx512f and gfni missing, not avx2", v)
	}
	if v, _ := hosts[1].CompareCPU(ctx, guest); v.OK || !strings.Contains(v.Explain(), "avx512vbmi") {
		t.Fatalf("Icelake guest on Cascadelake: %+v", v)
	}
	if v, _ := hosts[0].CompareCPU(ctx, migrate.CustomCPUXML("Haswell", "", nil, []string{"avx2"})); !v.OK {
		t.Fatalf("Haswell minus avx2 on Icelake: %+v", v)
	}
	if _, err := hosts[0].CompareCPU(ctx, "<cpu><model>x</model"); err == nil {
		t.Fatal("a malformed definition compared")
	}
}
