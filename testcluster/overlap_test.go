package testcluster

import (
	"slices"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// TestDrainOverlapsSetupsWithTransfers: sim migrations that spend 2 s
// starting their destination before the first byte, a drain of six VMs
// with two outgoing slots in an auto cluster of 64 MiB/s whose setups
// overlap the last 2 s of a transfer. The next migration is granted
// while the transfers of a wave end, so three (never more than four)
// migrations leave h1 at once for a while; the leader's state never
// counts a slot over its limit nor grants more than the network; every
// VM moves once and runs on exactly one host.
func TestDrainOverlapsSetupsWithTransfers(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 5, MigrationSetup: 2 * time.Second})
	names := c.defineOn(t, "h1", 6, 512)
	c.waitVMs(len(names))
	l := c.Leader(10 * time.Second)
	cl := fsm.DefaultCluster("c1")
	cl.BandwidthMode, cl.MigrationNetMiB, cl.MaxOutgoing = fsm.BandwidthAuto, 64, 2
	var set fsm.Cluster
	if err := c.Call(l.APIAddr(), "PUT", "/v1/clusters/c1", cl, &set); err != nil {
		t.Fatal(err)
	}
	if set.OverlapMs != fsm.DefaultOverlapMs {
		t.Fatalf("switched to auto: overlap %d ms, want the default %d", set.OverlapMs, fsm.DefaultOverlapMs)
	}
	w := c.WatchSlots(5 * time.Millisecond)
	if err := c.Call(l.APIAddr(), "POST", "/v1/hosts/h1/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := c.waitDrainEnd("h1", 2*time.Minute)
	samples, bad, _ := w.Stop()
	if d.State != fsm.DrainDone || len(d.Moved) != len(names) {
		t.Fatalf("drain %s, moved %v; want done with all %d", d.State, d.Moved, len(names))
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d samples over a limit, first: %s", len(bad), samples, bad[0])
	}
	// From the migration records: how many existed at once (grant to end).
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	var first, last time.Time
	moved := map[string]int{}
	for _, m := range c.Leader(10 * time.Second).FSM().State().Migrations {
		if m.Source != "h1" || m.State != fsm.MigSucceeded {
			continue
		}
		moved[m.VM]++
		edges = append(edges, edge{m.StartedAt, 1}, edge{m.EndedAt, -1})
		if first.IsZero() || m.StartedAt.Before(first) {
			first = m.StartedAt
		}
		if m.EndedAt.After(last) {
			last = m.EndedAt
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a grant at the same instant
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	t.Logf("%d samples; at most %d migrations from h1 at once; drain %s from the first grant to the last end", samples, most, last.Sub(first).Round(time.Millisecond))
	if most < 3 || most > 4 {
		t.Errorf("at most %d migrations left h1 at once: want 3 or 4 (two slots, each lent once while its transfer ends)", most)
	}
	for _, n := range names {
		if moved[n] != 1 {
			t.Errorf("VM %s moved %d times", n, moved[n])
		}
	}
	c.assertOneHostPerVM(t)
}
