package migrate

import (
	"slices"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// sending sets m's last progress report: sent MiB sent, left MiB to go,
// at rate MiB/s.
func sending(st *fsm.State, id string, sent, left uint64, rate float64) {
	m := st.Migrations[id]
	m.Progress = fsm.Progress{ProcessedBytes: sent << 20, RemainingBytes: left << 20, MiBps: rate}
}

// overlapCluster is an auto cluster of 32 MiB/s, two outgoing slots per
// host and setups overlapping the last 2 s of a transfer.
func overlapCluster() fsm.Cluster {
	cl := fsm.DefaultCluster("c1")
	cl.BandwidthMode, cl.MigrationNetMiB, cl.MaxOutgoing, cl.OverlapMs = fsm.BandwidthAuto, 32, 2, 2000
	return cl
}

// TestOverlapLendsTheSlotOfAnEndingTransfer: a drain of four VMs from h1
// with two outgoing slots. The third waits while both transfers have
// more than 2 s to go; once one is predicted to end within 2 s its slot
// goes to the third, whose setup takes what is left (1 MiB/s, from the
// other transfer) and never slows the ending one; the caps never exceed the network; each slot
// is lent once, so the fourth waits though two transfers are ending.
func TestOverlapLendsTheSlotOfAnEndingTransfer(t *testing.T) {
	b := newBuilder().hosts("h", 3).cluster(overlapCluster())
	b.vm("a", "h1").vm("b", "h1").vm("c", "h1").vm("d", "h1")
	a, bb, c, d := b.queue("a"), b.queue("b"), b.queue("c"), b.queue("d")
	st := b.st
	apply(t, st, Schedule(st))
	checkSlots(t, st, 1)
	if st.Migrations[a].State != fsm.MigRunning || st.Migrations[bb].State != fsm.MigRunning || st.Migrations[c].State != fsm.MigQueued {
		t.Fatalf("first pass: %s %s %s, want two running and the third queued", st.Migrations[a].State, st.Migrations[bb].State, st.Migrations[c].State)
	}
	sending(st, a, 100, 64, 16) // 4 s to go
	sending(st, bb, 100, 64, 16)
	if ds := Schedule(st); len(ds) != 0 {
		t.Fatalf("both transfers 4 s from their end: decisions %+v, want none", ds)
	}
	sending(st, a, 140, 24, 16) // 1.5 s to go
	if !st.Ending(st.Migrations[a]) || st.Ending(st.Migrations[bb]) {
		t.Fatalf("ending: %s %v, %s %v; want only %s", a, st.Ending(st.Migrations[a]), bb, st.Ending(st.Migrations[bb]), a)
	}
	ds := Schedule(st)
	if len(ds) != 1 || ds[0].Migration != c {
		t.Fatalf("with %s ending: decisions %+v, want a grant of %s alone", a, ds, c)
	}
	apply(t, st, ds)
	checkSlots(t, st, 2)
	want := map[string]uint64{a: 16, bb: 15, c: 1}
	for id, w := range want {
		if got := st.Migrations[id].GrantedMiB; got != w {
			t.Errorf("overlap: %s at %d MiB/s, want %d", id, got, w)
		}
	}
	if r := Reshare(st); len(r) != 0 {
		t.Errorf("reshare during the overlap: %+v, want nothing (the transfer keeps its cap)", r)
	}
	// The new one's setup ends and it sends while a still ends: it keeps
	// what is left, the ending transfer its cap.
	sending(st, c, 1, 200, 1)
	if r := Reshare(st); len(r) != 0 {
		t.Errorf("reshare once %s sends: %+v, want nothing (%s keeps its cap until it ends)", c, r, a)
	}
	// a sent everything and completes (unlimited in QEMU): it keeps its
	// cap, no longer counted, and c shares the whole network with b.
	sending(st, a, 164, 0, 16)
	fsm.ApplyShares(st, Reshare(st))
	checkSlots(t, st, 2)
	if ga, gb, gc := st.Migrations[a].GrantedMiB, st.Migrations[bb].GrantedMiB, st.Migrations[c].GrantedMiB; ga != 16 || gb != 16 || gc != 16 {
		t.Errorf("%s sent everything: %d, %d, %d MiB/s; want 16 (kept, not counted), 16 and 16 (the network shared by %s and %s)", a, ga, gb, gc, bb, c)
	}
	// Both first transfers end their last seconds: b's slot is lent too,
	// a's only once: d waits.
	sending(st, bb, 150, 20, 16)
	ds = Schedule(st)
	if len(ds) != 1 || ds[0].Migration != d {
		t.Fatalf("with %s and %s ending: decisions %+v, want a grant of %s", a, bb, ds, d)
	}
	apply(t, st, ds)
	checkSlots(t, st, 3)
	sending(st, c, 0, 0, 0)
	b.vm("e", "h1")
	e := b.queue("e")
	if ds := Schedule(st); len(ds) != 0 {
		t.Fatalf("four migrations from h1 with two slots: decisions %+v, want none (%s waits)", ds, e)
	}
	// a ends: c and d, both in setup, share the network with nothing
	// ending but b.
	finish(st, st.Migrations[a], fsm.MigSucceeded)
	fsm.ApplyShares(st, Reshare(st))
	checkSlots(t, st, 4)
	if sum := st.Migrations[bb].GrantedMiB + st.Migrations[c].GrantedMiB + st.Migrations[d].GrantedMiB; sum > 32 {
		t.Errorf("after %s ended: %d MiB/s granted, over the 32 MiB/s network", a, sum)
	}
	finish(st, st.Migrations[bb], fsm.MigSucceeded)
	fsm.ApplyShares(st, Reshare(st))
	if gc, gd := st.Migrations[c].GrantedMiB, st.Migrations[d].GrantedMiB; gc != 16 || gd != 16 {
		t.Errorf("after both ended: %s at %d, %s at %d MiB/s, want 16 each", c, gc, d, gd)
	}
}

// TestNoOverlapWithoutItsSetting: the same ending transfer in a cluster
// without OverlapMs (or in fixed bandwidth) keeps its slot, and a
// post-copy migration never lends one.
func TestNoOverlapWithoutItsSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*fsm.Cluster)
		prog fsm.Progress
	}{
		{"overlap 0", func(c *fsm.Cluster) { c.OverlapMs = 0 }, fsm.Progress{ProcessedBytes: 1 << 30, RemainingBytes: 1 << 20, MiBps: 16}},
		{"fixed bandwidth", func(c *fsm.Cluster) { c.BandwidthMode = fsm.BandwidthFixed }, fsm.Progress{ProcessedBytes: 1 << 30, RemainingBytes: 1 << 20, MiBps: 16}},
		{"post-copy", func(*fsm.Cluster) {}, fsm.Progress{ProcessedBytes: 1 << 30, RemainingBytes: 1 << 20, MiBps: 16, PostCopy: true}},
		{"nothing sent yet", func(*fsm.Cluster) {}, fsm.Progress{RemainingBytes: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := overlapCluster()
			tc.set(&cl)
			b := newBuilder().hosts("h", 3).cluster(cl)
			b.vm("a", "h1").vm("b", "h1").vm("c", "h1")
			a, _, c := b.queue("a"), b.queue("b"), b.queue("c")
			st := b.st
			apply(t, st, Schedule(st))
			st.Migrations[a].Progress = tc.prog
			if st.Ending(st.Migrations[a]) {
				t.Fatalf("%s counts as ending", a)
			}
			if ds := Schedule(st); len(ds) != 0 {
				t.Fatalf("decisions %+v, want none (%s waits for a free slot)", ds, c)
			}
		})
	}
}

// TestGrantNowIsWhatTheNextGrantGets: a dry run predicts at the cap the
// scheduler would grant now: in an auto cluster the fair share beside the
// running transfers (its own smaller cap if it asks one), in a fixed one
// its own cap or the cluster's.
func TestGrantNowIsWhatTheNextGrantGets(t *testing.T) {
	b := newBuilder().hosts("h", 3).cluster(overlapCluster())
	b.vm("a", "h1").vm("b", "h1")
	a := b.queue("a")
	st := b.st
	if got := GrantNow(st, "c1", 0); got != 32 {
		t.Fatalf("idle auto cluster: %d MiB/s, want the whole 32", got)
	}
	apply(t, st, Schedule(st))
	if st.Migrations[a].State != fsm.MigRunning {
		t.Fatalf("%s is %s", a, st.Migrations[a].State)
	}
	if got := GrantNow(st, "c1", 0); got != 16 {
		t.Errorf("beside one transfer: %d MiB/s, want 16", got)
	}
	if got := GrantNow(st, "c1", 8); got != 8 {
		t.Errorf("asking 8 beside one transfer: %d MiB/s, want 8", got)
	}
	id := b.queue("b")
	ds := Schedule(st)
	if len(ds) != 1 || ds[0].Migration != id || ds[0].BandwidthMiB != 16 {
		t.Errorf("the grant that follows: %+v, want %s at 16 MiB/s", ds, id)
	}
	cl := fsm.DefaultCluster("c1")
	cl.BandwidthMode, cl.BandwidthMiB = fsm.BandwidthFixed, 40
	st.Clusters["c1"] = &cl
	if got := GrantNow(st, "c1", 0); got != 40 {
		t.Errorf("fixed cluster: %d MiB/s, want its 40", got)
	}
	if got := GrantNow(st, "c1", 10); got != 10 {
		t.Errorf("fixed cluster, asking 10: %d MiB/s, want 10", got)
	}
}

// TestHandOffIsTheReshareThatFollows: the caps a source raises on its own
// when a transfer is found all sent are exactly those the leader's
// reshare commits once that sample is applied, and they never add up to
// more than the network; a sample with bytes left, or of a cluster
// without overlap, hands nothing off.
func TestHandOffIsTheReshareThatFollows(t *testing.T) {
	b := newBuilder().hosts("h", 3).cluster(overlapCluster())
	b.vm("a", "h1").vm("b", "h1").vm("c", "h1").vm("d", "h1")
	a, bb, c, d := b.queue("a"), b.queue("b"), b.queue("c"), b.queue("d")
	st := b.st
	apply(t, st, Schedule(st))
	sending(st, a, 140, 20, 16)
	sending(st, bb, 140, 20, 16)
	apply(t, st, Schedule(st)) // c and d in setup, a and b ending
	if st.Migrations[c].State != fsm.MigRunning || st.Migrations[d].State != fsm.MigRunning {
		t.Fatalf("%s and %s are %s and %s, want both running in their setup", c, d, st.Migrations[c].State, st.Migrations[d].State)
	}
	sending(st, c, 1, 200, 1)
	sending(st, d, 1, 200, 1)
	if r := HandOff(st.Clone(), a, fsm.Progress{ProcessedBytes: 150 << 20, RemainingBytes: 10 << 20, MiBps: 16}); r != nil {
		t.Errorf("hand-off of a sample with bytes left: %+v, want none", r)
	}
	all := fsm.Progress{ProcessedBytes: 160 << 20, MiBps: 16}
	got := HandOff(st.Clone(), a, all)
	pre := st.Clone()
	st.Migrations[a].Progress = all
	want := Reshare(st)
	if len(got) == 0 || !slices.Equal(got, want) {
		t.Fatalf("hand-off %+v, want the reshare that follows the sample, %+v", got, want)
	}
	beforeA, before := st.Migrations[a].GrantedMiB, st.Migrations[bb].GrantedMiB
	fsm.ApplyShares(st, got)
	var sum uint64
	for _, id := range []string{bb, c, d} {
		sum += st.Migrations[id].GrantedMiB
	}
	ga, gb, gc, gd := st.Migrations[a].GrantedMiB, st.Migrations[bb].GrantedMiB, st.Migrations[c].GrantedMiB, st.Migrations[d].GrantedMiB
	if ga != beforeA || gb != before || sum != 32 || gc+gd != 32-before {
		t.Errorf("after the hand-off: %s %d, %s %d, %s %d, %s %d MiB/s; want %s kept at %d (sent: not counted), %s kept at %d (it still ends), "+
			"the rest between %s and %s, 32 in all but %s", a, ga, bb, gb, c, gc, d, gd, a, beforeA, bb, before, c, d, a)
	}
	// Its last pass within its allowed downtime (300 ms at least) of its
	// end hands off too; more left, or the first pass, does not.
	for _, tc := range []struct {
		name string
		p    fsm.Progress
		want bool
	}{
		{"second pass, 4 MiB left at 16 MiB/s", fsm.Progress{ProcessedBytes: 150 << 20, RemainingBytes: 4 << 20, MiBps: 16, Iteration: 2, MaxDowntimeMs: 100}, true},
		{"second pass, 6 MiB left at 16 MiB/s", fsm.Progress{ProcessedBytes: 150 << 20, RemainingBytes: 6 << 20, MiBps: 16, Iteration: 2, MaxDowntimeMs: 100}, false},
		{"first pass, 4 MiB left", fsm.Progress{ProcessedBytes: 150 << 20, RemainingBytes: 4 << 20, MiBps: 16, Iteration: 1}, false},
	} {
		r := HandOff(pre.Clone(), a, tc.p)
		if (r != nil) != tc.want {
			t.Errorf("%s: hand-off %+v, want one: %v", tc.name, r, tc.want)
		}
	}
	cl := overlapCluster()
	cl.OverlapMs = 0
	b2 := newBuilder().hosts("h", 3).cluster(cl)
	b2.vm("a", "h1").vm("b", "h1")
	a2 := b2.queue("a")
	b2.queue("b")
	apply(t, b2.st, Schedule(b2.st))
	if r := HandOff(b2.st.Clone(), a2, all); r != nil {
		t.Errorf("hand-off without overlap: %+v, want none (the cap goes when the migration ends)", r)
	}
}
