package testcluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// The scale test of automatic balancing (issue 13): 20 hosts of 16 GiB,
// three of them at 75 % (12 VMs of 1 GiB) and the rest empty. Once an
// operator turns memory balancing on with meshctl, the leader spreads the
// VMs until the most and least loaded hosts are within the threshold,
// with at most the budget of migrations, no VM moved twice (the hold is
// an hour, longer than the test), a VM pinned with --migratable=false and
// a hard vm-apart pair obeyed; then its next pass moves nothing, and the
// hypervisors agree with the state (the truth checker).
func TestBalanceTwentyHostsConverges(t *testing.T) {
	const hosts, loaded, perHost, vmMiB, budget, threshold = 20, 3, 12, 1024, 40, 10
	c := New(t, Options{Hosts: hosts, TimeScale: 40})
	for i := range loaded {
		c.defineOn(t, HostName(i), perHost, vmMiB)
	}
	c.waitVMs(loaded * perHost)
	c.WaitFor(60*time.Second, "20 hosts Up everywhere", allHostsUp(c, hosts))
	l := c.Leader(10 * time.Second)
	addr := l.APIAddr()
	if code, _, errOut := meshctl(t, addr, "vm", "set", "h1-x0", "--migratable=false"); code != 0 {
		t.Fatalf("meshctl vm set: exit %d: %s", code, errOut)
	}
	if code, _, errOut := meshctl(t, addr, "affinity", "create", "apart", "--vms", "h2-x0,h2-x1", "--apart"); code != 0 {
		t.Fatalf("meshctl affinity create: exit %d: %s", code, errOut)
	}
	// Before it is on, the dry run says so.
	if code, out, errOut := meshctl(t, addr, "balance", "c1", "--dry-run"); code != 0 || !strings.Contains(out, "balancing is off") {
		t.Fatalf("meshctl balance --dry-run with balancing off (exit %d):\n%s%s", code, out, errOut)
	}
	start := time.Now()
	code, out, errOut := meshctl(t, addr, "cluster", "c1", "--balance", "memory", "--balance-threshold", fmt.Sprint(threshold),
		"--balance-budget", fmt.Sprint(budget), "--balance-hold", "1h")
	if code != 0 || !strings.Contains(out, "balance memory within 10 points, hold 1h0m0s, 40 moves an hour") {
		t.Fatalf("meshctl cluster --balance: exit %d: %s%s", code, out, errOut)
	}

	// Converged: the hypervisors' placement within the threshold and
	// nothing of the balancer's left in flight.
	spread := func() float64 {
		used := map[string]float64{}
		for vm, on := range c.VMPlacement() {
			if len(on) == 1 && strings.Contains(vm, "-x") {
				used[on[0]] += vmMiB
			}
		}
		hi, lo := 0.0, 100.0
		for i := range hosts {
			pct := 100 * used[HostName(i)] / 16384
			hi, lo = max(hi, pct), min(lo, pct)
		}
		return hi - lo
	}
	busy := func() bool {
		busy := false
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
			for _, m := range s.Migrations {
				busy = busy || !m.State.Final()
			}
		})
		return busy
	}
	c.WaitFor(180*time.Second, "the 20 hosts within 10 points of memory load", func() bool {
		return !busy() && spread() <= threshold
	})
	took := time.Since(start)

	l = c.Leader(10 * time.Second)
	st := l.FSM().State()
	moves, perVM := 0, map[string]int{}
	for _, m := range st.Migrations {
		if m.RequestedBy != node.BalanceActor {
			continue
		}
		moves++
		if m.State != fsm.MigSucceeded {
			t.Errorf("balancing migration %s of %s ended %s: %s", m.ID, m.VM, m.State, m.Reason)
		}
		perVM[m.VM]++
		if perVM[m.VM] > 1 {
			t.Errorf("vm %s moved twice within its hold", m.VM)
		}
		if m.VM == "h1-x0" {
			t.Errorf("vm h1-x0 is not migratable, yet balancing moved it (%s)", m.ID)
		}
	}
	// 36 VMs over 20 hosts: at least 30 must leave the three loaded hosts
	// (each keeps 2 at most, 12.5 %, against 1 on the emptiest).
	if moves > budget || moves < 30 {
		t.Errorf("%d balancing moves: want 30 to the budget of %d", moves, budget)
	}
	place := c.VMPlacement()
	if a, b := place["h2-x0"], place["h2-x1"]; len(a) != 1 || len(b) != 1 || a[0] == b[0] {
		t.Errorf("vm-apart pair on %v and %v", a, b)
	}
	if code, out, errOut := meshctl(t, addr, "balance", "c1", "--dry-run"); code != 0 ||
		!strings.Contains(out, ", 0 moves (budget ") || !strings.Contains(out, "; within the threshold") {
		t.Errorf("meshctl balance --dry-run: the next pass would not rest (exit %d):\n%s%s", code, out, errOut)
	}
	evs, _ := l.FSM().Events(fsm.EventQuery{})
	notes := 0
	for _, e := range evs {
		if e.Kind == fsm.EventBalance {
			notes++
			if notes == 1 && !strings.Contains(e.Message, "vm h1-x0 stays on h1: migratable") {
				t.Errorf("first balance.pass event does not name the pinned VM: %s", e.Message)
			}
		}
	}
	if notes == 0 {
		t.Error("no balance.pass event")
	}
	t.Logf("balanced 20 hosts from 75 points of spread to %.1f in %s with %d moves (budget %d), %d passes",
		spread(), took.Round(100*time.Millisecond), moves, budget, notes)
	c.CheckTruth(t, 30*time.Second)
}
