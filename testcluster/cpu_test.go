package testcluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// TestClusterCPUBaseline runs the cluster CPU baseline on sim hosts of
// mixed CPU models: two Icelake hosts get an Icelake baseline computed by
// the leader; a Haswell host joining is NonOperational with the missing
// features named (the baseline is not lowered: an Icelake guest runs); an operator's
// recompute lowers it to Haswell, names the dropped features and brings the
// host Up; a migration of an Icelake guest to the Haswell host is refused by
// the cpu-model check naming an AVX-512 feature, from the Haswell host's
// own comparison.
func TestClusterCPUBaseline(t *testing.T) {
	c := New(t, Options{Hosts: 2, WrapHypervisor: func(i int, hv migrate.Hypervisor) migrate.Hypervisor {
		h := hv.(*sim.Host)
		switch i {
		case 0:
			h.SetCPU("Icelake-Server", nil)
			if err := h.Define(sim.VMSpec{Name: "ice", MemoryMiB: 256, VCPUs: 1, CPUModel: "Icelake-Server",
				NICs: []fsm.NIC{{Network: "vmnet"}}}); err != nil {
				t.Fatal(err)
			}
		case 1:
			h.SetCPU("Icelake-Server", nil)
		default:
			h.SetCPU("Haswell", nil)
		}
		return h
	}})
	defer c.Close()
	const timeout = 60 * time.Second
	leader := c.Leader(timeout)
	cluster := func() (cl fsm.Cluster) {
		leader.FSM().Read(func(s *fsm.State) { cl = s.Cluster("c1") })
		return cl
	}
	host := func(name string) (h fsm.Host) {
		leader.FSM().Read(func(s *fsm.State) {
			if p := s.Hosts[name]; p != nil {
				h = *p
			}
		})
		return h
	}
	c.WaitFor(timeout, "an Icelake baseline", func() bool {
		cl := cluster()
		return cl.CPUBaselineModel == "Icelake-Server"
	})
	c.AddHost(nil)
	c.WaitFor(timeout, "h3 NonOperational naming avx512f", func() bool {
		h := host("h3")
		return h.State == fsm.HostNonOperational && strings.Contains(h.StateReason, "avx512f")
	})
	t.Logf("h3: %s (%s)", host("h3").State, host("h3").StateReason)
	if cl := cluster(); cl.CPUBaselineModel != "Icelake-Server" {
		t.Fatalf("the baseline changed by itself: %s", cl.CPUBaselineModel)
	}

	ctx := context.Background()
	got, err := c.Client(leader.APIAddr()).RecomputeCPUBaseline(ctx, "c1")
	if err != nil {
		t.Fatalf("recompute: %v", err)
	}
	if got.CPUBaselineModel != "Haswell" || got.CPUBaselineMode != fsm.CPUBaselineOperator ||
		slices.Contains(got.CPUBaselineFeatures, "avx512f") || !slices.Contains(got.CPUBaselineFeatures, "avx2") {
		t.Fatalf("recomputed baseline: %s %s %v", got.CPUBaselineModel, got.CPUBaselineMode, got.CPUBaselineFeatures)
	}
	c.WaitFor(timeout, "h3 Up under the Haswell baseline", func() bool { return host("h3").State == fsm.HostUp })
	var dropped bool
	evs, err := c.Client(leader.APIAddr()).Events(ctx, api.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	for _, e := range evs.Events {
		if e.Kind == fsm.EventCPUBaseline && strings.Contains(e.Message, "lowered: drops") && strings.Contains(e.Message, "avx512f") {
			dropped = true
		}
	}
	if !dropped {
		t.Fatal("no event names the features the recompute dropped")
	}

	// h3 compares the Icelake guest's CPU with its own (Haswell) CPU.
	c.WaitFor(timeout, "h3's verdict on vm ice's CPU", func() bool {
		var xml string
		leader.FSM().Read(func(s *fsm.State) {
			for _, vm := range s.VMs {
				if vm.Name == "ice" {
					xml = vm.CPUXML
				}
			}
		})
		h := host("h3")
		_, ok := h.CPUVerdictFor(fsm.CPUDigest(xml))
		return xml != "" && ok
	})
	_, err = c.Client(leader.APIAddr()).Migrate(ctx, api.MigrateRequest{VM: "ice", To: "h3"})
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("migrate ice to h3: %v, want a refusal", err)
	}
	var msg string
	for _, r := range ae.Checks {
		if r.Name == migrate.CheckCPUModel && !r.OK {
			msg = r.Message
		}
	}
	if !strings.Contains(msg, "avx512f") || !strings.Contains(msg, "h3's libvirt") {
		t.Fatalf("cpu-model refusal %q (all: %v), want avx512f named from h3's comparison", msg, err)
	}
	t.Logf("refused: %s", msg)
	// ...while h2 (Icelake) takes it.
	if _, err := c.Client(leader.APIAddr()).Migrate(ctx, api.MigrateRequest{VM: "ice", To: "h2", DryRun: true}); err != nil {
		t.Fatalf("dry run of ice to h2: %v", err)
	}
}

// TestCPUBaselineLoweredToAdmitAHost: with no running guest whose CPU the
// Haswell host cannot run, the automatic Icelake baseline is lowered to
// admit it (how a cluster forming host by host settles): h3 ends Up under
// a Haswell baseline computed from all three hosts.
func TestCPUBaselineLoweredToAdmitAHost(t *testing.T) {
	c := New(t, Options{Hosts: 2, WrapHypervisor: func(i int, hv migrate.Hypervisor) migrate.Hypervisor {
		h := hv.(*sim.Host)
		if i < 2 {
			h.SetCPU("Icelake-Server", nil)
		} else {
			h.SetCPU("Haswell", nil)
		}
		return h
	}})
	defer c.Close()
	const timeout = 60 * time.Second
	leader := c.Leader(timeout)
	read := func() (cl fsm.Cluster, h3 fsm.Host) {
		leader.FSM().Read(func(s *fsm.State) {
			cl = s.Cluster("c1")
			if h := s.Hosts["h3"]; h != nil {
				h3 = *h
			}
		})
		return cl, h3
	}
	c.WaitFor(timeout, "an Icelake baseline", func() bool { cl, _ := read(); return cl.CPUBaselineModel == "Icelake-Server" })
	c.AddHost(nil)
	c.WaitFor(timeout, "a Haswell baseline of h1, h2, h3 and h3 Up", func() bool {
		cl, h3 := read()
		return cl.CPUBaselineModel == "Haswell" && cl.CPUBaselineMode == fsm.CPUBaselineAuto &&
			slices.Equal(cl.CPUBaselineHosts, []string{"h1", "h2", "h3"}) && h3.State == fsm.HostUp
	})
}
