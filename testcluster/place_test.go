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

// A drain obeys every kind of affinity rule created with meshctl: hard
// VM-VM apart, hard host-must, soft host-avoid, and a hard rule no host
// can keep makes its VM unmovable, the drain naming the rule.
func TestDrainObeysAffinityRules(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	h1, _ := c.Reg.Host("h1")
	for _, name := range []string{"db1", "db2", "lic", "web", "stay"} {
		if err := h1.Define(simVM(name, 512)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitVMs(5)
	l := c.Leader(10 * time.Second)
	for _, args := range [][]string{
		{"affinity", "create", "db-apart", "--vms", "db1,db2", "--apart"},
		{"affinity", "create", "licence", "--vms", "lic", "--hosts", "h3", "--must"},
		{"affinity", "create", "not-h3", "--vms", "web", "--hosts", "h3", "--avoid", "--soft"},
		{"affinity", "create", "stay", "--vms", "stay", "--hosts", "h1", "--must"},
	} {
		if code, _, errOut := meshctl(t, l.APIAddr(), args...); code != 0 {
			t.Fatalf("meshctl %v: exit %d: %s", args, code, errOut)
		}
	}
	code, out, _ := meshctl(t, l.APIAddr(), "affinity", "list")
	if code != 0 || !strings.Contains(out, "not-h3") || !strings.Contains(out, "soft") || strings.Count(out, "hard") != 3 {
		t.Fatalf("meshctl affinity list (exit %d):\n%s", code, out)
	}
	if err := c.Call(l.APIAddr(), "POST", "/v1/hosts/h1/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := c.waitDrainEnd("h1", 60*time.Second)
	if d.State != fsm.DrainStuck || len(d.Moved) != 4 {
		t.Fatalf("drain %s moved %v unmovable %v: want 4 moved and stay unmovable", d.State, d.Moved, d.Unmovable)
	}
	if why := d.Unmovable["stay"]; !strings.Contains(why, "affinity: rule stay (hard host-must)") {
		t.Fatalf("stay is unmovable because %q: want the affinity check naming rule stay", why)
	}
	on := map[string]string{}
	l.FSM().Read(func(s *fsm.State) {
		for _, vm := range s.VMs {
			on[vm.Name] = vm.Host
		}
	})
	if on["db1"] == on["db2"] || on["lic"] != "h3" || on["web"] != "h2" || on["stay"] != "h1" {
		t.Fatalf("placed %v: want db1 and db2 apart, lic on h3, web on h2, stay on h1", on)
	}
	c.assertOneHostPerVM(t)
	if code, _, errOut := meshctl(t, l.APIAddr(), "affinity", "delete", "stay"); code != 0 {
		t.Fatalf("meshctl affinity delete: exit %d: %s", code, errOut)
	}
}
