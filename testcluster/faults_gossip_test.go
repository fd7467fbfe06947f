package testcluster

import (
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/fsm"
)

// TestLeaderCutOffGossipKeepsItsVoters: the leader's gossip is lost while
// its Raft flows (the fault matrix's lost gossip, seed 3 of its first
// run). Its failure detector declares every other host dead; it marks them
// Down, but it must not remove them from Raft: its Raft still commits, so
// it would shrink the configuration to itself one removal at a time and
// leave every other replica behind for good. Gossip seeing no majority of
// the voters alive, it holds the removals and says so; once healed, every
// host is Up again and every replica identical.
func TestLeaderCutOffGossipKeepsItsVoters(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 5, VMsPerHost: 2, Logger: slog.New(logs)})
	c.waitVMs(10)
	l := c.Leader(20 * time.Second)
	voters := func() int {
		f := l.Raft().GetConfiguration()
		if f.Error() != nil {
			return -1
		}
		k := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				k++
			}
		}
		return k
	}
	c.WaitFor(30*time.Second, "5 voters", func() bool { return voters() == 5 })
	li := c.indexOf(l.Name())

	c.CutGossip(li)
	c.WaitFor(30*time.Second, "the leader marking every other host Down", func() bool {
		down := 0
		l.FSM().Read(func(s *fsm.State) {
			for name, h := range s.Hosts {
				if name != l.Name() && h.State == fsm.HostDown {
					down++
				}
			}
		})
		return down == 4
	})
	c.WaitFor(30*time.Second, "the leader holding back the removals (or removing a voter)", func() bool {
		return len(logs.Lines(slog.LevelWarn, "not removing failed raft peer", "host", l.Name())) > 0 || voters() < 5
	})
	if k := voters(); k != 5 {
		t.Fatalf("the leader cut off gossip left %d voters of 5", k)
	}
	if !l.IsLeader() {
		t.Fatalf("%s lost the leadership though its Raft flows", l.Name())
	}

	c.Heal(li)
	c.WaitFor(60*time.Second, "every host Up and every replica identical", func() bool {
		up := 0
		l.FSM().Read(func(s *fsm.State) {
			for _, h := range s.Hosts {
				if h.State == fsm.HostUp {
					up++
				}
			}
		})
		return up == 5 && replicasIdentical(c)
	})
	if k := voters(); k != 5 {
		t.Errorf("after the heal: %d voters of 5", k)
	}
	c.CheckTruth(t, faultSettleBound)
}

// TestBootstrapHostRejoinsAfterPartition: h1, the host that bootstrapped
// the mesh (no --join), is partitioned off until the leader removed it
// from Raft and the others have counted it Down for longer than gossip's
// gossip-to-the-dead time (5 s in Fast mode: after it no one gossips to
// h1, nor h1 to them), then healed. It must find its way back by itself: alone in
// gossip, it rejoins the hosts it knew, the leader adds it again, and its
// replica catches up (the fault matrix's "replicas differ: h1@74 ..." with
// every other replica at 110: h1 stayed out until a restart).
func TestBootstrapHostRejoinsAfterPartition(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2})
	c.waitVMs(6)
	c.WaitFor(30*time.Second, "3 hosts in the Raft configuration", func() bool {
		l := c.leaderOrNil()
		return l != nil && len(raftServers(l)) == 3
	})
	c.Partition(0)
	c.WaitFor(60*time.Second, "a leader among h2, h3 that removed h1 from Raft and has had it Down for 8 s", func() bool {
		for _, n := range c.Nodes() {
			if n.Name() != "h1" && n.IsLeader() && len(raftServers(n)) == 2 {
				down := false
				n.FSM().Read(func(s *fsm.State) {
					h := s.Hosts["h1"]
					down = h != nil && h.State == fsm.HostDown && time.Since(h.Since) > 8*time.Second
				})
				return down
			}
		}
		return false
	})
	c.Heal(0)
	c.WaitFor(60*time.Second, "h1 back in the Raft configuration and every replica identical", func() bool {
		l := c.leaderOrNil()
		return l != nil && len(raftServers(l)) == 3 && replicasIdentical(c)
	})
	c.CheckTruth(t, faultSettleBound)
}
