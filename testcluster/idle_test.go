package testcluster

import (
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// An idle leader paces its non-voters (issue 15): each non-voter switches
// to the non-voters' longer heartbeat timeout, the leader holds back the
// RPCs that would tell them nothing new, and they still know their
// leader, forward writes to it and learn every commit.
func TestIdleLeaderPacesNonvoters(t *testing.T) {
	c := New(t, Options{Hosts: 4, VMsPerHost: 1, MaxVoters: 1})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "1 voter and 3 non-voters", func() bool { v, nv := raftRoles(t, l); return v == 1 && nv == 3 })
	voterTimeout := l.Raft().ReloadableConfig().HeartbeatTimeout
	var nonvoters []*node.Node
	for _, n := range c.Nodes() {
		if n != l {
			nonvoters = append(nonvoters, n)
		}
	}
	c.WaitFor(10*time.Second, "every non-voter on a longer heartbeat timeout than the voters'", func() bool {
		for _, n := range nonvoters {
			if n.Raft().ReloadableConfig().HeartbeatTimeout <= voterTimeout {
				return false
			}
		}
		return true
	})
	held := l.PacedRPCs()
	c.WaitFor(30*time.Second, "the idle leader to hold back RPCs", func() bool { return l.PacedRPCs() >= held+30 })
	for _, n := range nonvoters {
		if _, id := n.Raft().LeaderWithID(); string(id) != l.Name() {
			t.Fatalf("paced non-voter %s names leader %q, want %s", n.Name(), id, l.Name())
		}
	}
	// A write through a paced non-voter is forwarded, and every replica
	// applies it.
	want := fsm.DefaultCluster("c1")
	want.MaxConcurrent = 9
	if err := c.putCluster(nonvoters[0].APIAddr(), want); err != nil {
		t.Fatalf("write through non-voter %s: %v", nonvoters[0].Name(), err)
	}
	c.WaitFor(10*time.Second, "every replica to apply the write", func() bool {
		for _, n := range c.Nodes() {
			if n.FSM().State().Cluster("c1").MaxConcurrent != 9 {
				return false
			}
		}
		return true
	})
	if l.Raft().ReloadableConfig().HeartbeatTimeout != voterTimeout {
		t.Fatalf("the leader's heartbeat timeout changed to %s", l.Raft().ReloadableConfig().HeartbeatTimeout)
	}
}
