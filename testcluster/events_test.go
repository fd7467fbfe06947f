package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// TestEventLog: a migration and a drain are told by the replicated event
// log, identical on every replica, with who asked; a blocking read of the
// stream answers as soon as the next event is committed; meshctl events
// prints them.
func TestEventLog(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, TimeScale: 40})
	l := c.Leader(10 * time.Second)
	c.waitVMs(3)
	follower := c.Node(0)
	if follower.IsLeader() {
		follower = c.Node(1)
	}
	cl := c.Client(follower.APIAddr())
	ctx := context.Background()

	id, err := c.Migrate(follower.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", To: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.waitFinal(id, 30*time.Second); m.State != fsm.MigSucceeded {
		t.Fatalf("migration %s: %s", id, m.State)
	}
	var page api.Events
	c.WaitFor(10*time.Second, "the migration's events on the follower", func() bool {
		page, err = cl.Events(ctx, api.EventQuery{VM: "vm-h1-0"})
		return err == nil && len(page.Events) > 0 && page.Events[len(page.Events)-1].Kind == fsm.EventMigrationSucceded
	})
	evs := page.Events
	for len(evs) > 0 && evs[0].Kind == fsm.EventHostInventory {
		evs = evs[1:] // the VM appearing in its host's inventory
	}
	if evs[0].Kind != fsm.EventMigrationQueued || evs[0].Actor != "token:initial-management" || evs[0].Migration != id {
		t.Errorf("first event of the VM %+v, want its queueing by token:initial-management", evs[0])
	}
	if g := evs[1]; g.Kind != fsm.EventMigrationGranted || g.Actor != "host "+l.Name() {
		t.Errorf("second event %+v, want the grant by the leader %s", g, l.Name())
	}
	all, err := cl.Events(ctx, api.EventQuery{Limit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kindsOf(all.Events), fsm.EventLeaderElected) || !strings.Contains(kindsOf(all.Events), fsm.EventHostJoined) {
		t.Errorf("events %s lack the leader's election or the hosts joining", kindsOf(all.Events))
	}

	// A blocking read answers with the drain's first event.
	got := make(chan api.Events, 1)
	go func() {
		p, err := cl.Events(ctx, api.EventQuery{After: all.Next, Host: "h3", Wait: 30 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	start := time.Now()
	if code, out, errOut := meshctl(t, l.APIAddr(), "drain", "h3", "--wait"); code != 0 {
		t.Fatalf("drain: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case p := <-got:
		if len(p.Events) == 0 || p.Events[0].Kind != fsm.EventDrainStarted {
			t.Fatalf("blocking read answered %s, want the drain's start", kindsOf(p.Events))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the blocking read did not answer %s after the drain", time.Since(start))
	}

	// Every replica holds the same log.
	c.WaitFor(10*time.Second, "every replica at the leader's index", func() bool {
		for _, n := range c.Nodes() {
			if n.FSM().Index() != l.FSM().Index() {
				return false
			}
		}
		return true
	})
	want, _ := l.FSM().Events(fsm.EventQuery{})
	wb, _ := json.Marshal(want)
	for _, n := range c.Nodes() {
		evs, _ := n.FSM().Events(fsm.EventQuery{})
		if b, _ := json.Marshal(evs); !bytes.Equal(b, wb) {
			t.Errorf("%s's event log differs from the leader's", n.Name())
		}
	}
	code, out, _ := meshctl(t, follower.APIAddr(), "events", "--host", "h3")
	if code != 0 || !strings.Contains(out, fsm.EventDrainStarted) || !strings.Contains(out, fsm.EventDrainDone) || !strings.Contains(out, "token:initial-management") {
		t.Fatalf("meshctl events --host h3: exit %d\n%s", code, out)
	}
}

func kindsOf(evs []api.Event) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}
