package gossip

import (
	"fmt"
	"testing"
	"time"
)

// detectTimeout is generous for a shared 2-core machine; Fast mode usually
// declares a stopped agent dead in 1-2 s (the tests log the measured time).
const detectTimeout = 15 * time.Second

func TestShutdownIsDetectedAsFailed(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })

	start := time.Now()
	if err := agents[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, agents[0], detectTimeout, "failed event of h02", func(e Event) bool {
		return e.Member.Name == "h02" && (e.Type == EventFailed || e.Type == EventLeft)
	})
	t.Logf("failure of h02 detected by h00 in %v", time.Since(start))
	if ev.Type != EventFailed || ev.Member.Status != StatusDead {
		t.Fatalf("h00 got %v with status %s, want failed/dead", ev.Type, ev.Member.Status)
	}
	if ev.Member.Facts.CPUModel != "Skylake-Server" {
		t.Errorf("dead member lost its facts: %+v", ev.Member.Facts)
	}
	waitFor(t, detectTimeout, "h01 to see h02 dead", func() bool {
		m, ok := agents[1].Member("h02")
		return ok && m.Status == StatusDead
	})
	if ms := agents[0].Members(); len(ms) != 3 {
		t.Errorf("dead member dropped from Members: %+v", ms)
	}
}

func TestLeaveIsLeft(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })

	if err := agents[2].Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, agents[0], detectTimeout, "leave event of h02", func(e Event) bool {
		return e.Member.Name == "h02" && (e.Type == EventFailed || e.Type == EventLeft)
	})
	if ev.Type != EventLeft || ev.Member.Status != StatusLeft {
		t.Fatalf("h00 got %v with status %s, want left", ev.Type, ev.Member.Status)
	}
	if err := agents[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, detectTimeout, "h01 to see h02 left", func() bool {
		m, ok := agents[1].Member("h02")
		return ok && m.Status == StatusLeft
	})
	// Shutting down after leaving must not turn "left" into "dead".
	if m, _ := agents[0].Member("h02"); m.Status != StatusLeft {
		t.Errorf("h02 is %s on h00 after shutdown, want left", m.Status)
	}
	if err := agents[2].Leave(time.Second); err == nil {
		t.Error("leave after shutdown succeeded")
	}
}

func TestRestartedHostReplacesStaleFacts(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })
	for i := range 3 {
		f := testFacts("h02")
		f.MemFreeMiB = uint64(i)
		agents[2].Update(f) // v2..v4
	}
	waitFor(t, convergeTimeout, "h02 v4 on h00", func() bool { return sees(agents[0], "h02", 4) })
	_ = agents[2].Shutdown()
	waitFor(t, detectTimeout, "h02 dead", func() bool {
		m, _ := agents[0].Member("h02")
		return m.Status == StatusDead
	})

	// Same name, new port, counter back at 1: memberlist lets the name be
	// reclaimed after DeadNodeReclaimTime, so join until it is accepted.
	f := testFacts("h02")
	f.CPUModel = "Icelake-Server"
	again := startAgent(t, testConfig("h02"), f)
	waitFor(t, convergeTimeout, "restarted h02 to rejoin", func() bool {
		_, err := again.Join([]string{agents[0].Addr()})
		return err == nil && sees(agents[0], "h02", 1) && agents[0].memberAddr("h02") == again.Addr()
	})
	waitFor(t, convergeTimeout, "new facts of h02 everywhere", func() bool {
		for _, a := range []*Agent{agents[0], agents[1], again} {
			m, _ := a.Member("h02")
			if m.Facts.CPUModel != "Icelake-Server" || m.Version <= 4 {
				return false
			}
		}
		return true
	})
}

// memberAddr is the gossip address a holds for host.
func (a *Agent) memberAddr(host string) string {
	m, _ := a.Member(host)
	return m.Addr
}

// TestLANDetectionTime checks failure detection with the default LAN
// profile meshd runs in production. It takes 5-30 s; a host must be seen
// dead within the bound, or drains and failovers would wait on it.
func TestLANDetectionTime(t *testing.T) {
	agents := make([]*Agent, 5)
	for i := range agents {
		cfg := testConfig(fmt.Sprintf("lan%d", i))
		cfg.Fast = false
		agents[i] = startAgent(t, cfg, testFacts(cfg.Name))
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].Addr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, time.Minute, "convergence", func() bool { return converged(agents) })
	start := time.Now()
	_ = agents[4].Shutdown()
	waitFor(t, time.Minute, "lan4 dead on all", func() bool {
		for _, a := range agents[:4] {
			if m, _ := a.Member("lan4"); m.Status != StatusDead {
				return false
			}
		}
		return true
	})
	t.Logf("LAN profile, 5 agents: failure seen by all in %v", time.Since(start))
}
