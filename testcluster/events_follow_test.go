package testcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/cli"
	"github.com/hostmesh/hostmesh/fsm"
)

// TestMeshctlEventsFollowsADrain: `meshctl events -f --host h2`, started
// before a drain, prints the drain's start while the drain still runs, then
// each VM's migration and the drain's end, in the log's order, without being
// restarted.
func TestMeshctlEventsFollowsADrain(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 3, TimeScale: 20})
	l := c.Leader(10 * time.Second)
	c.waitVMs(9)
	follower := c.Node(0)
	if follower.IsLeader() {
		follower = c.Node(1)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- cli.RunContext(ctx, []string{"meshctl", "--addr", follower.APIAddr(), "--cacert", c.CAFile,
			"--token-file", c.TokenFile, "events", "-f", "--host", "h2", "-n", "1"}, out, errOut)
	}()
	// -n 1 prints the host's latest past event: once it is out, meshctl
	// follows from there, so the drain's events come through the follow.
	c.WaitFor(10*time.Second, "meshctl events -f to print the host's last event", func() bool { return out.String() != "" })
	cl := c.Client(l.APIAddr())
	if _, err := cl.Drain(ctx, "h2", api.DrainRequest{}); err != nil {
		t.Fatalf("drain h2: %v", err)
	}
	var sawStartWhileRunning bool
	c.WaitFor(60*time.Second, "meshctl events -f to print the drain's end", func() bool {
		d, _, err := cl.DrainStatus(ctx, "h2", nil)
		printed := out.String()
		if err == nil && d.State == fsm.DrainActive && strings.Contains(printed, fsm.EventDrainStarted) {
			sawStartWhileRunning = true
		}
		return strings.Contains(printed, fsm.EventDrainDone)
	})
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("meshctl events -f: exit %d after Ctrl-C\n%s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("meshctl events -f did not end when its context did")
	}
	printed := out.String()
	if !sawStartWhileRunning {
		t.Errorf("the drain's start was not printed while it ran:\n%s", printed)
	}
	start, done := strings.Index(printed, fsm.EventDrainStarted), strings.Index(printed, fsm.EventDrainDone)
	if start < 0 || done < start {
		t.Fatalf("drain start at %d, end at %d in:\n%s", start, done, printed)
	}
	if n := strings.Count(printed[start:done], fsm.EventMigrationSucceded); n != 3 {
		t.Errorf("%d migrations succeeded between the drain's start and end, want 3:\n%s", n, printed)
	}
}
