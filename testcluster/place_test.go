package testcluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// A VM with a passthrough device and a VM pinned with `meshctl vm set
// --migratable=false` are reported unmovable by the drain at once, each
// naming the migratable check: no migration of them is ever queued.
func TestDrainReportsUnmigratableVMsAtOnce(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	c.defineOn(t, "h1", 2, 512)
	h1, _ := c.Reg.Host("h1")
	gpu := simVM("gpu", 512)
	gpu.HostDevices = []string{"pci 0000:03:00.0"}
	if err := h1.Define(gpu); err != nil {
		t.Fatal(err)
	}
	c.waitVMs(3)
	l := c.Leader(10 * time.Second)
	if code, _, errOut := meshctl(t, l.APIAddr(), "vm", "set", "h1-x0", "--migratable=false"); code != 0 {
		t.Fatalf("meshctl vm set: exit %d: %s", code, errOut)
	}
	code, out, _ := meshctl(t, l.APIAddr(), "vms")
	if code != 0 || !strings.Contains(out, "NOT MIGRATABLE gpu: vm gpu has passthrough host device pci 0000:03:00.0") ||
		!strings.Contains(out, "NOT MIGRATABLE h1-x0: vm h1-x0 was set not migratable") {
		t.Fatalf("meshctl vms (exit %d) does not say which VMs cannot move:\n%s", code, out)
	}
	if err := c.Call(l.APIAddr(), "POST", "/v1/hosts/h1/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	// At once: the drain's own entry reports both.
	d, _ := c.drainState("h1")
	for _, vm := range []string{"gpu", "h1-x0"} {
		if !strings.HasPrefix(d.Unmovable[vm], "migratable: ") {
			t.Errorf("right after the drain started, %s is %q: want unmovable by the migratable check", vm, d.Unmovable[vm])
		}
	}
	d, st := c.waitDrainEnd("h1", 60*time.Second)
	if d.State != fsm.DrainStuck || st != fsm.HostPreparingForMaintenance || len(d.Moved) != 1 || d.Moved["h1-x1"] == "" {
		t.Fatalf("drain %s (host %s) moved %v unmovable %v: want stuck with only h1-x1 moved", d.State, st, d.Moved, d.Unmovable)
	}
	var tried []string
	l.FSM().Read(func(s *fsm.State) {
		for _, m := range s.Migrations {
			if m.VM == "gpu" || m.VM == "h1-x0" {
				tried = append(tried, m.ID+" of "+m.VM)
			}
		}
	})
	if len(tried) > 0 {
		t.Fatalf("migrations of unmovable VMs were queued: %v", tried)
	}
	c.assertOneHostPerVM(t)
}
