package testcluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// voters returns the voter and non-voter counts of the leader's raft config.
func raftRoles(t *testing.T, n *node.Node) (voters, nonvoters int) {
	t.Helper()
	f := n.Raft().GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, 0
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == 0 { // raft.Voter
			voters++
		} else {
			nonvoters++
		}
	}
	return
}

// allHostsUp waits until every running node's replica lists want hosts Up.
func allHostsUp(c *Cluster, want int) func() bool {
	return func() bool {
		for _, n := range c.Nodes() {
			up := 0
			n.FSM().Read(func(s *fsm.State) {
				for _, h := range s.Hosts {
					if h.State == fsm.HostUp {
						up++
					}
				}
			})
			if up != want {
				return false
			}
		}
		return true
	}
}

func TestLeaderAmongThreeAndFive(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := New(t, Options{Hosts: size})
			leader := c.Leader(10 * time.Second)
			c.WaitFor(20*time.Second, "every host a voter", func() bool {
				v, _ := raftRoles(t, leader)
				return v == size
			})
			c.WaitFor(20*time.Second, "every replica lists every host Up", allHostsUp(c, size))
			leaders := 0
			for _, n := range c.Nodes() {
				if n.IsLeader() {
					leaders++
				}
			}
			if leaders != 1 {
				t.Fatalf("%d leaders among %d hosts", leaders, size)
			}
		})
	}
}

func TestLeaderKilledNewLeaderKeepsCommittedEntries(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	old := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "3 voters", func() bool { v, _ := raftRoles(t, old); return v == 3 })
	// Commit a cluster setting through the leader; it must survive failover.
	want := fsm.DefaultCluster("c1")
	want.MaxConcurrent = 7
	if err := c.putCluster(old.APIAddr(), want); err != nil {
		t.Fatal(err)
	}
	idx := old.Raft().AppliedIndex()
	oldIdx := -1
	for i := range 3 {
		if c.Node(i) == old {
			oldIdx = i
		}
	}
	c.Kill(oldIdx)
	start := time.Now()
	nl := c.Leader(10 * time.Second)
	t.Logf("new leader %s after %s", nl.Name(), time.Since(start).Round(time.Millisecond))
	if nl == old {
		t.Fatal("the killed node is still leader")
	}
	c.WaitFor(10*time.Second, "new leader applied the old entries", func() bool { return nl.Raft().AppliedIndex() >= idx })
	if got := nl.FSM().State().Cluster("c1").MaxConcurrent; got != 7 {
		t.Fatalf("committed cluster setting lost: max concurrent %d, want 7", got)
	}
	c.WaitFor(15*time.Second, "the killed host marked Down", func() bool {
		var st fsm.HostState
		nl.FSM().Read(func(s *fsm.State) { st = s.Hosts[HostName(oldIdx)].State })
		return st == fsm.HostDown
	})
}

func TestTenHostsFiveVotersAndPromotionOnLeave(t *testing.T) {
	c := New(t, Options{Hosts: 10})
	leader := c.Leader(10 * time.Second)
	c.WaitFor(40*time.Second, "5 voters and 5 non-voters", func() bool {
		l := c.Leader(10 * time.Second)
		v, nv := raftRoles(t, l)
		return v == 5 && nv == 5
	})
	// A voter that is not the leader leaves gracefully: a non-voter is
	// promoted so there are 5 voters again, and the leaver is removed.
	cfg := leader.Raft().GetConfiguration()
	if err := cfg.Error(); err != nil {
		t.Fatal(err)
	}
	var leaver int = -1
	for _, s := range cfg.Configuration().Servers {
		if s.Suffrage == 0 && string(s.ID) != leader.Name() {
			for i := range 10 {
				if HostName(i) == string(s.ID) {
					leaver = i
				}
			}
			break
		}
	}
	n := c.Node(leaver)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.Leave(ctx, 20*time.Second); err != nil {
		t.Fatalf("leave %s: %v", n.Name(), err)
	}
	c.Kill(leaver)
	c.WaitFor(30*time.Second, "5 voters, 4 non-voters without the leaver", func() bool {
		l := c.Leader(10 * time.Second)
		v, nv := raftRoles(t, l)
		return v == 5 && nv == 4
	})
	c.WaitFor(10*time.Second, "the leaver marked Left", func() bool {
		var st fsm.HostState
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { st = s.Hosts[HostName(leaver)].State })
		return st == fsm.HostLeft
	})
}

func TestFreeMemoryChangeVisibleOnAllHosts(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "hosts Up everywhere", allHostsUp(c, 3))
	h3, _ := c.Reg.Host("h3")
	before := h3.FreeMiB()
	if err := h3.Remove("vm-h3-0"); err != nil {
		t.Fatal(err)
	}
	want := before + 512
	c.WaitFor(20*time.Second, fmt.Sprintf("h3 free memory %d MiB on every replica and in gossip", want), func() bool {
		for _, n := range c.Nodes() {
			var free uint64
			n.FSM().Read(func(s *fsm.State) { free = s.Hosts["h3"].MemFreeMiB })
			m, ok := n.Gossip().Member("h3")
			if free != want || !ok || m.Facts.MemFreeMiB != want {
				return false
			}
		}
		return true
	})
}

func TestRestartFromDataDirRejoinsWithState(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2})
	c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "6 VMs replicated everywhere", func() bool {
		for _, n := range c.Nodes() {
			if len(n.FSM().State().VMs) != 6 {
				return false
			}
		}
		return true
	})
	victim := 2
	if c.Node(victim).IsLeader() {
		victim = 1
	}
	c.Kill(victim)
	// Change the state while it is away.
	l := c.Leader(10 * time.Second)
	want := fsm.DefaultCluster("c1")
	want.BandwidthMiB = 99
	if err := c.putCluster(l.APIAddr(), want); err != nil {
		t.Fatal(err)
	}
	c.Restart(victim)
	n := c.Node(victim)
	// Before it catches up, the restored log already has the VMs.
	c.WaitFor(5*time.Second, "restarted node restored its log", func() bool { return len(n.FSM().State().VMs) == 6 })
	c.WaitFor(20*time.Second, "restarted node caught up with the change", func() bool {
		return n.FSM().State().Cluster("c1").BandwidthMiB == 99
	})
	c.WaitFor(20*time.Second, "restarted host Up again", func() bool {
		var st fsm.HostState
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { st = s.Hosts[HostName(victim)].State })
		return st == fsm.HostUp
	})
}

func TestHostMissingClusterRequirementsIsNonOperational(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, Networks: func(i int) []fsm.Network {
		if i == 2 {
			return []fsm.Network{{Name: "vmnet"}}
		}
		return []fsm.Network{{Name: "vmnet"}, {Name: "storage"}}
	}})
	l := c.Leader(10 * time.Second)
	c.waitVMs(3)
	cl := fsm.DefaultCluster("c1")
	cl.RequiredNetworks = []string{"storage"}
	cl.CPUBaseline = []string{"sse4_2", "avx2"}
	if err := c.putCluster(l.APIAddr(), cl); err != nil {
		t.Fatal(err)
	}
	var h3 fsm.Host
	c.WaitFor(10*time.Second, "h3 NonOperational", func() bool {
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { h3 = *s.Hosts["h3"] })
		return h3.State == fsm.HostNonOperational
	})
	if !strings.Contains(h3.StateReason, "storage") {
		t.Fatalf("reason %q does not name the missing network", h3.StateReason)
	}
	if _, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", To: "h3"}); err == nil || !strings.Contains(err.Error(), "dest-up") {
		t.Fatalf("migration to a NonOperational host: %v", err)
	}
	// A baseline flag no host has makes every host NonOperational; removing
	// the requirement brings them back Up.
	cl.CPUBaseline = []string{"avx512f"}
	if err := c.putCluster(l.APIAddr(), cl); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(10*time.Second, "h1 NonOperational for its CPU", func() bool {
		var h fsm.Host
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { h = *s.Hosts["h1"] })
		return h.State == fsm.HostNonOperational && strings.Contains(h.StateReason, "avx512f")
	})
	cl.CPUBaseline, cl.RequiredNetworks = nil, nil
	if err := c.putCluster(l.APIAddr(), cl); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(10*time.Second, "every host Up again", allHostsUp(c, 3))
}

func TestPartitionedLeaderIsReplacedAndRejoins(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	old := c.Leader(10 * time.Second)
	c.waitVMs(3)
	idx := 0
	for i := range 3 {
		if c.Node(i) == old {
			idx = i
		}
	}
	c.Partition(idx)
	var nl *node.Node
	c.WaitFor(15*time.Second, "a new leader in the majority", func() bool {
		for _, n := range c.Nodes() {
			if n != old && n.IsLeader() {
				nl = n
				return true
			}
		}
		return false
	})
	c.WaitFor(15*time.Second, "the cut-off host seen Down by the majority", func() bool {
		var st fsm.HostState
		nl.FSM().Read(func(s *fsm.State) { st = s.Hosts[old.Name()].State })
		return st == fsm.HostDown
	})
	// The majority commits; the cut-off node cannot.
	want := fsm.DefaultCluster("c1")
	want.MaxOutgoing = 3
	if err := c.putCluster(nl.APIAddr(), want); err != nil {
		t.Fatal(err)
	}
	if old.IsLeader() {
		if err := old.Raft().Apply([]byte{byte(fsm.CmdActivate)}, time.Second).Error(); err == nil {
			t.Fatal("a partitioned leader committed an entry")
		}
	}
	c.Heal(idx)
	c.WaitFor(30*time.Second, "the healed host catches up and is Up", func() bool {
		var st fsm.HostState
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { st = s.Hosts[old.Name()].State })
		return st == fsm.HostUp && !old.IsLeader() && old.FSM().State().Cluster("c1").MaxOutgoing == 3
	})
}
