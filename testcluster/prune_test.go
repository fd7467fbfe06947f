package testcluster

import (
	"context"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// TestLeftHostIsRemovedAfterItsGrace: a host that left the mesh, its VMs
// drained away, is removed from the state by the leader once its grace
// passed, its drain record with it, so the state does not keep every
// host that ever was.
func TestLeftHostIsRemovedAfterItsGrace(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, TimeScale: 40, LeftHostGrace: 300 * time.Millisecond})
	c.Leader(10 * time.Second)
	c.waitVMs(3)
	leaver := 2
	if c.Node(leaver).IsLeader() {
		leaver = 1
	}
	name := HostName(leaver)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := c.Node(leaver).Leave(ctx, 20*time.Second)
	if err != nil || len(rep.Moved) != 1 {
		t.Fatalf("leave %s: %+v, %v", name, rep, err)
	}
	c.Kill(leaver)
	c.WaitFor(30*time.Second, name+" removed from every replica", func() bool {
		for _, n := range c.Nodes() {
			gone := false
			n.FSM().Read(func(s *fsm.State) { gone = s.Hosts[name] == nil && s.Drains[name] == nil })
			if !gone {
				return false
			}
		}
		return true
	})
	l := c.Leader(10 * time.Second)
	evs, _ := l.FSM().Events(fsm.EventQuery{Host: name})
	if e := evs[len(evs)-1]; e.Kind != fsm.EventHostRemoved || e.Actor != "host "+l.Name() {
		t.Fatalf("last event of %s: %+v, want its removal by the leader", name, e)
	}
}
