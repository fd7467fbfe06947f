package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestCPUModelOfDefaultGuest: a guest defined without a <cpu> element (what
// most guests are) runs libvirt's default model, which libvirt writes into
// the live XML (qemu64 for x86). Two identical hosts can run it, so the
// cpu-model check must let it move between them. It must not demand that the
// guest's model equal the host's own CPU model (capabilities' host model,
// kvm64 here): that refuses every such guest on every host.
func TestCPUModelOfDefaultGuest(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m.bootSpec(t, ctx, m.lab.Hosts[0], lab.GuestSpec{Name: "defcpu", MemoryMiB: 128})
	var cands []migrate.Candidate
	if err := m.ctlJSON(ctx, &cands, "migrate", "defcpu", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	vm := m.vmEntries(t, ctx, "defcpu")[0]
	h2 := m.host(t, ctx, "h2")
	for _, c := range cands {
		if c.Host != "h2" {
			continue
		}
		for _, r := range c.Results {
			if r.Name == migrate.CheckCPUModel && !r.OK {
				t.Errorf("cpu-model refuses h1 → h2, two identical hosts: %s (vm CPU model %q, h2 host model %q)",
					r.Message, vm.CPUModel, h2.CPUModel)
			}
		}
		return
	}
	t.Fatalf("dry run lists no candidate h2: %+v", cands)
}
