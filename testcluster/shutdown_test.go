package testcluster

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/shutdown/shutdowntest"
)

// The shutdown policy on sim hosts, over a real dbus-daemon with a fake
// logind and systemd job queue: host h2's guard (what meshd runs) takes a
// delay inhibitor; logind's PrepareForShutdown then drains h2 and it leaves
// (migrate, conditional on a power-off), or h2 is frozen with its VMs
// (freeze, conditional on a reboot); the inhibitor's fd is closed when
// done. The checker (every VM on exactly one hypervisor, state equal to
// hypervisors, no attempt started twice, replicas identical) runs after.

const shutdownHost = 1 // h2

type shutdownRig struct {
	c     *Cluster
	fake  *shutdowntest.Logind
	guard *shutdown.Guard
	inh   *shutdowntest.Inhibitor
	vms   []string // h2's VMs at the start
}

func newShutdownRig(t *testing.T, policy shutdown.Policy) *shutdownRig {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, TimeScale: 40})
	c.waitVMs(6)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := shutdown.Open(ctx, "meshd", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	if inh.What != "shutdown" || inh.Mode != "delay" {
		t.Fatalf("inhibitor what=%q mode=%q, want shutdown, delay", inh.What, inh.Mode)
	}
	g := shutdown.NewGuard(shutdown.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Host: c.Node(shutdownHost),
		Watcher: w, Policy: func() shutdown.Policy { return policy }, DrainTimeout: 2 * time.Minute})
	go g.Run(ctx)
	r := &shutdownRig{c: c, fake: fake, guard: g, inh: inh}
	r.vms = c.vmsOn(HostName(shutdownHost))
	if len(r.vms) != 2 {
		t.Fatalf("%s runs %v, want 2 VMs", HostName(shutdownHost), r.vms)
	}
	return r
}

// vmsOn lists the VMs host's hypervisor runs.
func (c *Cluster) vmsOn(host string) []string {
	var out []string
	for vm, hs := range c.VMPlacement() {
		for _, h := range hs {
			if h == host {
				out = append(out, vm)
			}
		}
	}
	return out
}

func (r *shutdownRig) hostState() (fsm.HostState, string) {
	var st fsm.HostState
	var why string
	r.c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
		if h := s.Hosts[HostName(shutdownHost)]; h != nil {
			st, why = h.State, h.StateReason
		}
	})
	return st, why
}

func (r *shutdownRig) waitReleased(t *testing.T) {
	t.Helper()
	select {
	case <-r.inh.Released():
	case <-time.After(60 * time.Second):
		t.Fatal("the inhibitor's fd was not closed within 60s")
	}
}

// expectMigrated: h2 drained (its VMs run elsewhere), left the mesh, and
// released the inhibitor.
func (r *shutdownRig) expectMigrated(t *testing.T) {
	t.Helper()
	select {
	case <-r.guard.Left():
	case <-time.After(2 * time.Minute):
		t.Fatalf("h2 did not drain and leave within 2 minutes (action %s)", r.guard.Action())
	}
	r.waitReleased(t)
	// meshd exits once it left (its replica no longer follows the mesh).
	r.c.Crash(shutdownHost)
	r.c.WaitFor(30*time.Second, "h2 Left in the leader's state", func() bool {
		st, _ := r.hostState()
		return st == fsm.HostLeft
	})
	if left := r.c.vmsOn(HostName(shutdownHost)); len(left) != 0 {
		t.Fatalf("h2's hypervisor still runs %v after the drain", left)
	}
	for _, vm := range r.vms {
		if on := r.c.runsOn(vm); len(on) != 1 || on[0] == HostName(shutdownHost) {
			t.Errorf("VM %s runs on %v, want one other host", vm, on)
		}
	}
	r.c.CheckTruth(t, 30*time.Second)
}

// expectFrozen: h2 is in Maintenance as frozen, keeps its VMs, nothing is
// placed on it, the inhibitor is released; when its meshd starts again it
// thaws to Up with the same VMs.
func (r *shutdownRig) expectFrozen(t *testing.T) {
	t.Helper()
	r.waitReleased(t)
	if a := r.guard.Action(); a != shutdown.ActFreeze {
		t.Fatalf("action %s, want freeze", a)
	}
	st, why := r.hostState()
	if st != fsm.HostMaintenance || !strings.HasPrefix(why, node.FrozenReason) {
		t.Fatalf("h2 %s (%q), want Maintenance, frozen", st, why)
	}
	if got := r.c.vmsOn(HostName(shutdownHost)); len(got) != len(r.vms) {
		t.Fatalf("h2 runs %v after the freeze, want %v", got, r.vms)
	}
	// Nothing new on a frozen host.
	other := r.c.vmsOn(HostName(0))
	if _, err := r.c.Migrate(r.c.Leader(10*time.Second).APIAddr(), api.MigrateRequest{VM: other[0], To: HostName(shutdownHost)}); err == nil {
		t.Fatalf("a migration to the frozen h2 was accepted")
	}
	// The reboot: meshd stops (SIGTERM, VMs stay), starts again, thaws.
	r.c.Node(shutdownHost).Stop()
	r.c.Kill(shutdownHost)
	r.c.Restart(shutdownHost)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.c.Node(shutdownHost).Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	r.c.WaitFor(60*time.Second, "h2 Up again", func() bool {
		st, _ := r.hostState()
		return st == fsm.HostUp
	})
	if got := r.c.vmsOn(HostName(shutdownHost)); len(got) != len(r.vms) {
		t.Fatalf("h2 runs %v after coming back, want %v", got, r.vms)
	}
	r.c.CheckTruth(t, 30*time.Second)
}

func TestShutdownPolicyMigrate(t *testing.T) {
	r := newShutdownRig(t, shutdown.Migrate)
	if err := r.fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	r.expectMigrated(t)
}

func TestShutdownPolicyFreeze(t *testing.T) {
	r := newShutdownRig(t, shutdown.Freeze)
	if err := r.fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	r.expectFrozen(t)
}

// conditional reads systemd's job queue: a reboot freezes, a power-off
// migrates.
func TestShutdownPolicyConditional(t *testing.T) {
	t.Run("reboot", func(t *testing.T) {
		r := newShutdownRig(t, shutdown.Conditional)
		r.fake.SetJobs(shutdown.Job{Unit: "reboot.target", Type: "start"}, shutdown.Job{Unit: "shutdown.target", Type: "start"})
		if err := r.fake.PrepareForShutdown(true); err != nil {
			t.Fatal(err)
		}
		r.expectFrozen(t)
	})
	t.Run("poweroff", func(t *testing.T) {
		r := newShutdownRig(t, shutdown.Conditional)
		r.fake.SetJobs(shutdown.Job{Unit: "poweroff.target", Type: "start"}, shutdown.Job{Unit: "shutdown.target", Type: "start"})
		if err := r.fake.PrepareForShutdown(true); err != nil {
			t.Fatal(err)
		}
		r.expectMigrated(t)
	})
}
