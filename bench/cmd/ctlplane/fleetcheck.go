package main

import (
	"fmt"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
)

// fleetGossip changes one light host's free memory runs times and returns
// how long each change took to reach every light host's gossip agent: the
// light hosts are all but 5 of the mesh, and they run meshd's gossip code
// and production timings, so this is "gossip to every host" at fleet size.
func fleetGossip(fleet []*fleetHost, runs int) ([]float64, error) {
	var out []float64
	for r := 0; r < runs; r++ {
		src := fleet[(r*131+7)%len(fleet)]
		self, _ := src.agent.Member(src.agent.Name())
		want := self.Version + 1
		f := src.facts
		f.MemFreeMiB = f.MemFreeMiB - 1 - uint64(r)
		start := time.Now()
		src.agent.Update(f)
		if _, err := benchkit.Poll(30*time.Second, 5*time.Millisecond, "the change of "+src.agent.Name()+" to reach every light host", func() bool {
			for _, h := range fleet {
				if mb, ok := h.agent.Member(src.agent.Name()); !ok || mb.Version < want || mb.Facts.MemFreeMiB != f.MemFreeMiB {
					return false
				}
			}
			return true
		}); err != nil {
			return out, err
		}
		out = append(out, float64(time.Since(start).Milliseconds()))
		time.Sleep(2 * time.Second) // let the broadcast's retransmissions end
	}
	return out, nil
}

// fleetFailover SIGKILLs the leader (h1) and returns when a surviving voter
// first named a new leader, and when every light host followed it: the
// light hosts are Raft non-voters, as most of a large mesh. It ends the
// fleet phase (h1 is not restarted).
func fleetFailover(m *mesh, fleet []*fleetHost) (elected, followed time.Duration, err error) {
	start := time.Now()
	m.kill(0)
	var leader string
	if _, err := benchkit.Poll(time.Minute, 5*time.Millisecond, "a surviving voter to name a new leader", func() bool {
		for i := 1; i < m.n; i++ {
			if st, err := m.status(i); err == nil && st.Leader != "" && st.Leader != "h1" {
				leader = st.Leader
				return true
			}
		}
		return false
	}); err != nil {
		return 0, 0, err
	}
	elected = time.Since(start)
	var behind string
	if _, err := benchkit.Poll(time.Minute, 20*time.Millisecond, "every light host to follow "+leader, func() bool {
		for _, h := range fleet {
			if h.rep.Leader() != leader {
				behind = h.rep.Name
				return false
			}
		}
		return true
	}); err != nil {
		return elected, 0, fmt.Errorf("%w (%s follows %q)", err, behind, fleet[0].rep.Leader())
	}
	return elected, time.Since(start), nil
}
