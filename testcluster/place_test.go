package testcluster

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
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

// `meshctl drain --dry-run` prints the plan and changes nothing; the
// drain that follows sends every VM where the plan said, and leaves the
// VM the plan said it would, for the reason it gave.
func TestDrainPlanIsTheDrain(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	h1, _ := c.Reg.Host("h1")
	for i, name := range []string{"a", "b", "c", "d", "stay"} {
		if err := h1.Define(simVM(name, uint64(256*(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	c.waitVMs(5)
	l := c.Leader(10 * time.Second)
	// Slots for every move at once: the plan's first pass is the drain's.
	cl := fsm.DefaultCluster("c1")
	cl.MaxOutgoing, cl.MaxIncoming, cl.MaxConcurrent = 10, 10, 10
	if err := c.Call(l.APIAddr(), "PUT", "/v1/clusters/c1", cl, nil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"affinity", "create", "ab", "--vms", "a,b", "--apart"},
		{"affinity", "create", "stay", "--vms", "stay", "--hosts", "h1", "--must"},
	} {
		if code, _, errOut := meshctl(t, l.APIAddr(), args...); code != 0 {
			t.Fatalf("meshctl %v: exit %d: %s", args, code, errOut)
		}
	}
	code, out, errOut := meshctl(t, l.APIAddr(), "drain", "h1", "--dry-run")
	if code != 0 || !strings.Contains(out, "drain plan of h1: 4 VMs move, 1 cannot; predicted") ||
		!strings.Contains(out, "CANNOT MOVE stay: ") || !strings.Contains(out, "h2: affinity: rule stay (hard host-must)") || !strings.Contains(out, "52 MiB/s") {
		t.Fatalf("meshctl drain --dry-run (exit %d):\n%s%s", code, out, errOut)
	}
	var plan api.DrainPlan
	if err := c.Call(l.APIAddr(), "GET", "/v1/hosts/h1/drain/plan", nil, &plan); err != nil {
		t.Fatal(err)
	}
	if _, st := c.drainState("h1"); st != fsm.HostUp {
		t.Fatalf("after the dry run h1 is %s", st)
	}
	d, _ := c.waitDrainEndAfter(t, l.APIAddr(), "h1")
	on := map[string]string{}
	l.FSM().Read(func(s *fsm.State) {
		for _, vm := range s.VMs {
			on[vm.Name] = vm.Host
		}
	})
	for _, m := range plan.Moves {
		if on[m.VM] != m.Dest {
			t.Errorf("plan sent %s to %s (%s); the drain to %s", m.VM, m.Dest, m.Reason, on[m.VM])
		}
		if want := float64(m.MemoryMiB) / 52; math.Abs(m.Seconds-want) > 0.002 {
			t.Errorf("plan predicts %.2f s for %s, want %.2f (memory over 52 MiB/s)", m.Seconds, m.VM, want)
		}
	}
	if len(plan.Moves) != 4 || len(plan.Unmovable) != 1 || d.Unmovable["stay"] != plan.Unmovable[0].Reason {
		t.Fatalf("plan %d moves, unmovable %v; drain unmovable %v", len(plan.Moves), plan.Unmovable, d.Unmovable)
	}
	if on["a"] == on["b"] {
		t.Fatalf("a and b both on %s", on["a"])
	}
	c.assertOneHostPerVM(t)
}

// waitDrainEndAfter starts a drain of host and waits for it to end.
func (c *Cluster) waitDrainEndAfter(t *testing.T, addr, host string) (fsm.Drain, fsm.HostState) {
	t.Helper()
	if err := c.Call(addr, "POST", "/v1/hosts/"+host+"/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	return c.waitDrainEnd(host, 60*time.Second)
}

// `meshctl drain --wait` prints the ETA from the running drain's plan as
// migrations end, and at the end the plan's prediction next to the time
// it took; the drain records both. (The sim runs TimeScale times faster
// than its bandwidth says, so here the error is large and negative: the
// figure that counts is measured on the lab, bench/RESULTS.md.)
func TestDrainWaitShowsETAAndPredictionError(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	c.defineOn(t, "h1", 6, 2048)
	c.waitVMs(6)
	l := c.Leader(10 * time.Second)
	code, out, errOut := meshctl(t, l.APIAddr(), "drain", "h1", "--wait")
	if code != 0 {
		t.Fatalf("meshctl drain --wait: exit %d:\n%s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^  ETA \d+\.\ds: \d VMs to move \(predicted \d+\.\ds at the start`).MatchString(out) {
		t.Errorf("no ETA line in:\n%s", out)
	}
	var d fsm.Drain
	l.FSM().Read(func(s *fsm.State) { d = *s.Drains["h1"] })
	// 6 moves of 2048 MiB at 52 MiB/s, two at a time: 3 × 39.4 s.
	if d.State != fsm.DrainDone || math.Abs(d.PredictedSeconds-118.2) > 0.5 || d.ErrorPercent == 0 {
		t.Fatalf("drain %s predicted %.1f s, error %.1f %%: want done, 118.2 s predicted, an error recorded", d.State, d.PredictedSeconds, d.ErrorPercent)
	}
	if want := fmt.Sprintf("predicted %.1fs, took ", d.PredictedSeconds); !strings.Contains(out, want) ||
		!strings.Contains(out, fmt.Sprintf("error %+.1f%%", d.ErrorPercent)) {
		t.Errorf("the report does not give the prediction and its error %+.1f%%:\n%s", d.ErrorPercent, out)
	}
	c.assertOneHostPerVM(t)
}
