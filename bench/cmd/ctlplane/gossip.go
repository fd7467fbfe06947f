package main

import (
	"fmt"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
)

// gossipMesh is n gossip agents in this process with meshd's production
// (LAN) memberlist profile: meshd does not expose each host's gossip view
// through its API, so "reached all 100 hosts" is observed here, on the
// same agent code and timings meshd runs.
type gossipMesh struct{ agents []*gossip.Agent }

func facts(name string, free uint64) fsm.HostFacts {
	return fsm.HostFacts{Name: name, Cluster: "c1", Arch: "x86_64", CPUModel: "Skylake-Server",
		CPUFlags: []string{"sse4_2", "avx2", "aes"}, MemTotalMiB: 65536, MemFreeMiB: free, CPUs: 64, CPUsFree: 64,
		Networks: []fsm.Network{{Name: "vmnet"}}, StorageDomains: []string{"shared"}, Hypervisor: "sim", Version: "bench"}
}

func startGossip(n int) (*gossipMesh, error) {
	g := &gossipMesh{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("g%03d", i)
		a, err := gossip.Start(gossip.Config{Name: name, BindAddr: "127.0.0.1", DevMode: true}, facts(name, 16384))
		if err != nil {
			g.close()
			return nil, fmt.Errorf("gossip agent %s: %w", name, err)
		}
		g.agents = append(g.agents, a)
		if i > 0 {
			seed := g.agents[i%min(i, 4)].Addr()
			if _, err := benchkit.Poll(time.Minute, 50*time.Millisecond, name+" to join", func() bool {
				_, err := a.Join([]string{seed})
				return err == nil
			}); err != nil {
				g.close()
				return nil, err
			}
		}
	}
	if _, err := benchkit.Poll(5*time.Minute, 200*time.Millisecond, "every agent to know every host's facts", func() bool {
		for _, a := range g.agents {
			known := 0
			for _, mb := range a.Members() {
				if mb.Status == gossip.StatusAlive && mb.Version > 0 {
					known++
				}
			}
			if known != n {
				return false
			}
		}
		return true
	}); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// spread changes one agent's free memory and returns how long until every
// agent holds the new facts.
func (g *gossipMesh) spread(src int, free uint64) (time.Duration, error) {
	a := g.agents[src]
	self, _ := a.Member(a.Name())
	want := self.Version + 1
	start := time.Now()
	a.Update(facts(a.Name(), free))
	_, err := benchkit.Poll(30*time.Second, 5*time.Millisecond, "the change to reach every agent", func() bool {
		for _, b := range g.agents {
			if mb, ok := b.Member(a.Name()); !ok || mb.Version < want || mb.Facts.MemFreeMiB != free {
				return false
			}
		}
		return true
	})
	return time.Since(start), err
}

func (g *gossipMesh) close() {
	for _, a := range g.agents {
		_ = a.Shutdown()
	}
}
