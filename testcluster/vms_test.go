package testcluster

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// alarmWatch samples every replica's alarms until stop, so a test can
// assert that none was raised at any moment, not only at the end.
func alarmWatch(c *Cluster) (stop func() []string) {
	var mu sync.Mutex
	var seen []string
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, n := range c.Nodes() {
				n.FSM().Read(func(s *fsm.State) {
					for _, a := range s.Alarms {
						mu.Lock()
						seen = append(seen, n.Name()+": "+a.Message)
						mu.Unlock()
					}
				})
			}
		}
	}()
	return func() []string {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// TestVMsOfOneNameAndSplitBrain: two guests named alike on two hosts are
// two VMs; a name that two VMs have is refused with both (host, UUID), a
// UUID is not. Migrations never look like a split brain to the
// inventories, however they interleave; the same UUID running on two
// hosts does, is shown by meshctl vms, blocks migrations and clears when
// one copy stops.
func TestVMsOfOneNameAndSplitBrain(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, TimeScale: 40})
	h1, _ := c.Reg.Host("h1")
	h2, _ := c.Reg.Host("h2")
	h3, _ := c.Reg.Host("h3")
	for _, h := range []*sim.Host{h1, h2} {
		if err := h.Define(simVM("web", 256)); err != nil {
			t.Fatal(err)
		}
	}
	c.waitVMs(8)
	l := c.Leader(10 * time.Second)
	addr := l.APIAddr()
	code, _, errOut := meshctl(t, addr, "migrate", "web", "--to", "h3")
	if code != 2 || !strings.Contains(errOut, "ambiguous") || !strings.Contains(errOut, "on h1 (uuid ") || !strings.Contains(errOut, "on h2 (uuid ") {
		t.Fatalf("migrate by a name two VMs have: exit %d stderr %q", code, errOut)
	}
	key, vm, err := l.FSM().State().ResolveVM("vm-h2-0")
	if err != nil {
		t.Fatal(err)
	}
	_, out, _ := meshctl(t, addr, "vms")
	if !strings.Contains(out, "UUID") || strings.Count(out, "\nweb ") != 2 || !strings.Contains(out, vm.UUID) {
		t.Fatalf("vms table:\n%s", out)
	}

	// Migrations back and forth, by UUID and by name, with inventories
	// read at every moment around them: never an alarm.
	stop := alarmWatch(c)
	for _, to := range []string{"h3", "h1", "h2"} {
		if code, out, errOut := meshctl(t, addr, "migrate", key, "--wait", "--to", to); code != 0 {
			t.Fatalf("migrate %s to %s: exit %d\n%s%s", key, to, code, out, errOut)
		}
	}
	if code, out, errOut := meshctl(t, addr, "drain", "h1", "--wait"); code != 0 {
		t.Fatalf("drain h1: exit %d\n%s%s", code, out, errOut)
	}
	if seen := stop(); len(seen) > 0 {
		t.Fatalf("alarms during migrations: %v", seen)
	}
	// Every write records who asked: the token meshctl sent (the management
	// token the cluster started with).
	var d fsm.Drain
	l.FSM().Read(func(s *fsm.State) {
		d = *s.Drains["h1"]
		for _, m := range s.Migrations {
			if m.RequestedBy != "token:initial-management" {
				t.Errorf("migration %s asked by %q", m.ID, m.RequestedBy)
			}
		}
	})
	if d.RequestedBy != "token:initial-management" {
		t.Errorf("drain asked by %q", d.RequestedBy)
	}
	if _, out, _ := meshctl(t, addr, "migrations"); !strings.Contains(out, "BY") || !strings.Contains(out, "token:initial-management") {
		t.Errorf("migrations table shows no actor:\n%s", out)
	}

	// The same UUID starts on h3 while h2 runs it.
	twin := simVM("vm-h2-0-twin", 256)
	twin.UUID = vm.UUID
	if err := h3.Define(twin); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "a split-brain alarm on every replica", func() bool {
		for _, n := range c.Nodes() {
			if a := n.FSM().State().SplitBrain(key); a == nil || strings.Join(a.Hosts, ",") != "h2,h3" {
				return false
			}
		}
		return true
	})
	_, out, _ = meshctl(t, addr, "vms")
	if !strings.Contains(out, "split-brain") || !strings.Contains(out, "ALARM split-brain since") {
		t.Fatalf("vms shows no alarm:\n%s", out)
	}
	ms, err := c.Scrape(c.Leader(10 * time.Second).APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ms.Value("hostmesh_split_brain_alarm"); !ok || v != 1 {
		t.Errorf("hostmesh_split_brain_alarm = %g (present %v), want 1", v, ok)
	}
	evs, _ := l.FSM().Events(fsm.EventQuery{VM: key})
	if k := evs[len(evs)-1]; k.Kind != fsm.EventAlarmRaised || !strings.Contains(k.Message, "runs on h2 and h3") {
		t.Errorf("last event of the VM %+v, want the alarm raised", k)
	}
	code, _, errOut = meshctl(t, addr, "migrate", key, "--to", "h3")
	if code != 1 || !strings.Contains(errOut, "split-brain") || !strings.Contains(errOut, "runs on h2 and h3") {
		t.Fatalf("migrate during a split brain: exit %d stderr %q", code, errOut)
	}
	if err := h3.Remove("vm-h2-0-twin"); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "the alarm cleared on every replica", func() bool {
		for _, n := range c.Nodes() {
			if len(n.FSM().State().Alarms) != 0 {
				return false
			}
		}
		return true
	})
	evs, _ = l.FSM().Events(fsm.EventQuery{VM: key})
	if k := evs[len(evs)-1]; k.Kind != fsm.EventAlarmCleared || !strings.Contains(k.Message, "only h2 runs it now") {
		t.Errorf("last event of the VM %+v, want the alarm cleared", k)
	}
}
