package gossip

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

const convergeTimeout = 20 * time.Second

func TestThreeAgentsSeeAllFacts(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "3 agents to see each other", func() bool { return converged(agents) })

	for _, a := range agents {
		ms := a.Members()
		if len(ms) != 3 {
			t.Fatalf("%s sees %d members, want 3", a.Name(), len(ms))
		}
		for i, m := range ms {
			want := agents[i]
			if m.Name != want.Name() || m.Addr != want.Addr() || m.Version != 1 {
				t.Errorf("%s: member %d = %s %s v%d, want %s %s v1", a.Name(), i, m.Name, m.Addr, m.Version, want.Name(), want.Addr())
			}
			if !reflect.DeepEqual(m.Facts, testFacts(want.Name())) {
				t.Errorf("%s: facts of %s = %+v, want %+v", a.Name(), m.Name, m.Facts, testFacts(want.Name()))
			}
		}
	}
}

func TestJoinEventsCarryFacts(t *testing.T) {
	agents := startCluster(t, 2)
	ev := waitEvent(t, agents[0], convergeTimeout, "join of h01", func(e Event) bool {
		return e.Type == EventJoin && e.Member.Name == "h01"
	})
	if ev.Member.Facts.CPUModel != "Skylake-Server" || ev.Member.Version != 1 {
		t.Errorf("join event carries %+v v%d, want the facts of h01", ev.Member.Facts, ev.Member.Version)
	}
}

func TestUpdatePropagates(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })

	f := testFacts("h01")
	f.MemFreeMiB = 1234
	agents[1].Update(f)
	took := waitFor(t, 10*time.Second, "MemFreeMiB 1234 everywhere", func() bool {
		for _, a := range agents {
			m, _ := a.Member("h01")
			if m.Facts.MemFreeMiB != 1234 || m.Version != 2 {
				return false
			}
		}
		return true
	})
	t.Logf("update reached 3 agents in %v", took)

	waitEvent(t, agents[0], 5*time.Second, "update event of h01", func(e Event) bool {
		return e.Type == EventUpdate && e.Member.Name == "h01" && e.Member.Facts.MemFreeMiB == 1234
	})

	// Same facts again: no new version.
	agents[1].Update(f)
	if m, _ := agents[1].Member("h01"); m.Version != 2 {
		t.Errorf("unchanged update moved version to %d, want 2", m.Version)
	}
}

func TestTenAgentsConverge(t *testing.T) {
	agents := startCluster(t, 10)
	took := waitFor(t, convergeTimeout, "10 agents to converge", func() bool { return converged(agents) })
	t.Logf("10 agents converged in %v after the last join", took)

	f := testFacts("h07")
	f.CPUsFree = 3
	agents[7].Update(f)
	took = waitFor(t, 10*time.Second, "update of h07 on all 10", func() bool {
		for _, a := range agents {
			if m, _ := a.Member("h07"); m.Facts.CPUsFree != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("update reached 10 agents in %v", took)
}

func TestLateJoinerGetsFactsByPushPull(t *testing.T) {
	agents := startCluster(t, 3)
	for i, a := range agents {
		f := testFacts(a.Name())
		f.MemFreeMiB = uint64(100 + i)
		a.Update(f)
	}
	waitFor(t, convergeTimeout, "updates to spread and gossip queues to drain", func() bool {
		for _, a := range agents {
			if a.queue.NumQueued() != 0 {
				return false
			}
			for _, b := range agents {
				if !sees(a, b.Name(), 2) {
					return false
				}
			}
		}
		return true
	})

	late := startAgent(t, testConfig("late"), testFacts("late"))
	if _, err := late.Join([]string{agents[2].Addr()}); err != nil {
		t.Fatal(err)
	}
	// The join's push/pull exchanged full state before Join returned, and
	// nothing is left to gossip: the facts can only have come from it.
	for i, a := range agents {
		m, ok := late.Member(a.Name())
		if !ok || m.Version != 2 || m.Facts.MemFreeMiB != uint64(100+i) {
			t.Errorf("right after join, late sees %s as %+v (ok=%v), want v2 with MemFreeMiB %d", a.Name(), m, ok, 100+i)
		}
	}
	waitFor(t, convergeTimeout, "everyone to see the late joiner", func() bool {
		return converged(append(agents, late))
	})
}

func TestMembersIncludesSelfSorted(t *testing.T) {
	a := startAgent(t, testConfig("solo"), testFacts("solo"))
	ms := a.Members()
	if len(ms) != 1 || ms[0].Name != "solo" || ms[0].Status != StatusAlive || ms[0].Addr != a.Addr() {
		t.Fatalf("members of a lone agent = %+v, want itself alive at %s", ms, a.Addr())
	}
	ms[0].Facts.CPUFlags[0] = "mutated"
	if m, _ := a.Member("solo"); m.Facts.CPUFlags[0] != "sse4_2" {
		t.Errorf("Members returned facts aliasing the table")
	}
}

func TestStartRejectsForeignFacts(t *testing.T) {
	if _, err := Start(testConfig("a"), testFacts("b")); err == nil {
		t.Fatal("start with facts of another host succeeded")
	}
}

func TestFullEventChannelDropsAndCounts(t *testing.T) {
	a := startAgent(t, testConfig("busy"), testFacts("busy"))
	a.mu.Lock()
	for range eventBuffer + 10 {
		a.emitLocked(EventUpdate, a.members["busy"])
	}
	a.mu.Unlock()
	if got := a.Dropped(); got < 10 {
		t.Errorf("dropped %d events, want at least 10", got)
	}
}

func TestNoEventsAfterShutdown(t *testing.T) {
	a := startAgent(t, testConfig("quiet"), testFacts("quiet"))
	for len(a.Events()) > 0 {
		<-a.Events()
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	a.Update(testFacts("quiet")) // unchanged: no event anyway
	f := testFacts("quiet")
	f.MemFreeMiB++
	a.Update(f)
	select {
	case ev := <-a.Events():
		t.Fatalf("event after shutdown: %+v", ev)
	default:
	}
	if err := a.Shutdown(); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if _, err := a.Join([]string{"127.0.0.1:1"}); !errors.Is(err, ErrShutdown) {
		t.Errorf("join after shutdown = %v, want ErrShutdown", err)
	}
}
