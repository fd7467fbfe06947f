package migrate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// decisionFor returns the decision about id, or fails the test.
func decisionFor(t *testing.T, ds []Decision, id string) Decision {
	t.Helper()
	for _, d := range ds {
		if d.Migration == id {
			return d
		}
	}
	t.Fatalf("no decision for %s in %+v", id, ds)
	return Decision{}
}

func granted(ds []Decision) []string {
	var ids []string
	for _, d := range ds {
		if d.Fail == "" {
			ids = append(ids, d.Migration)
		}
	}
	return ids
}

func TestScheduleFails(t *testing.T) {
	maint := func(b *builder, hosts ...string) {
		for _, h := range hosts {
			setState(b, h, fsm.HostMaintenance, "kernel update")
		}
	}
	cases := []struct {
		name  string
		setup func(b *builder) string
		want  []string
	}{
		{name: "vm gone", setup: func(b *builder) string {
			id := b.queue("vm1")
			delete(b.st.VMs, "vm1")
			return id
		}, want: []string{"vm vm1 no longer exists"}},
		{name: "vm not running", setup: func(b *builder) string {
			id := b.queue("vm1")
			b.st.VMs["vm1"].State = fsm.VMPaused
			return id
		}, want: []string{"vm vm1 is paused, not running"}},
		{name: "vm moved off its source", setup: func(b *builder) string {
			id := b.queue("vm1")
			b.st.VMs["vm1"].Host = "h3"
			return id
		}, want: []string{"vm vm1 now runs on h3, not on source h1"}},
		{name: "pinned destination refused", setup: func(b *builder) string {
			maint(b, "h2")
			return b.queue("vm1", pinned("h2"))
		}, want: []string{"refused", "dest-up: h2 is Maintenance (kernel update)"}},
		{name: "pinned destination too small", setup: func(b *builder) string {
			b.host("h2", memFree(1000))
			return b.queue("vm1", pinned("h2"))
		}, want: []string{"memory: h2 has 1000 MiB for it"}},
		{name: "no host passes", setup: func(b *builder) string {
			maint(b, "h2", "h3")
			return b.queue("vm1")
		}, want: []string{"no host can take the vm", "h2: dest-up", "h3: dest-up"}},
		{name: "every host tried", setup: func(b *builder) string {
			return b.queue("vm1", func(m *fsm.Migration) { m.Tried = []string{"h2", "h3"}; m.Attempt = 1 })
		}, want: []string{"h2: excluded", "h3: excluded"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			id := tc.setup(b)
			d := decisionFor(t, Schedule(b.st), id)
			if d.Fail == "" {
				t.Fatalf("decision %+v, want a failure", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(d.Fail, w) {
					t.Errorf("failure %q lacks %q", d.Fail, w)
				}
			}
		})
	}
}

func TestScheduleGrantsPinnedAndPlaced(t *testing.T) {
	b := base().vm("vm2", "h2")
	pin := b.queue("vm1", pinned("h3"))
	free := b.queue("vm2")
	ds := Schedule(b.st)
	if d := decisionFor(t, ds, pin); d.Dest != "h3" || d.Fail != "" || !strings.Contains(d.Reason, "pinned") {
		t.Errorf("pinned decision %+v, want h3 with a pinned reason", d)
	}
	// h3 now has vm1 incoming, so the placed migration prefers h1.
	if d := decisionFor(t, ds, free); d.Dest != "h1" || !strings.Contains(d.Reason, "best of 2 passing hosts") {
		t.Errorf("placed decision %+v, want h1 as best of 2", d)
	}
	if again := Schedule(b.st); !reflect.DeepEqual(ds, again) {
		t.Errorf("Schedule is not deterministic:\n%+v\n%+v", ds, again)
	}
	if b.st.Migrations[pin].State != fsm.MigQueued {
		t.Errorf("Schedule modified its input")
	}
}

func TestScheduleSlotLimits(t *testing.T) {
	t.Run("outgoing", func(t *testing.T) {
		b := newBuilder().hosts("h", 6).vm("a", "h1").vm("b", "h1").vm("c", "h1")
		b.queue("a")
		b.queue("b")
		c := b.queue("c")
		ds := Schedule(b.st)
		if g := granted(ds); len(g) != 2 || slices.Contains(g, c) {
			t.Fatalf("granted %v, want the first two of h1 (MaxOutgoing 2)", g)
		}
	})
	t.Run("incoming, pinned", func(t *testing.T) {
		b := newBuilder().hosts("h", 4).vm("a", "h1").vm("b", "h2").vm("c", "h3")
		b.queue("a", pinned("h4"))
		b.queue("b", pinned("h4"))
		c := b.queue("c", pinned("h4"))
		if g := granted(Schedule(b.st)); len(g) != 2 || slices.Contains(g, c) {
			t.Fatalf("granted %v, want two into h4 (MaxIncoming 2)", g)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		cl := fsm.DefaultCluster("c1")
		cl.MaxConcurrent = 3
		b := newBuilder().hosts("h", 10).cluster(cl)
		for i := 1; i <= 5; i++ {
			b.vm(fmt.Sprintf("v%d", i), fmt.Sprintf("h%d", i))
			b.queue(fmt.Sprintf("v%d", i))
		}
		if g := granted(Schedule(b.st)); !slices.Equal(g, []string{"m1", "m2", "m3"}) {
			t.Fatalf("granted %v, want m1..m3 (MaxConcurrent 3)", g)
		}
	})
}

func TestScheduleTriesNextHostWhenBestHasNoIncomingSlot(t *testing.T) {
	b := base().host("h3", memFree(60000)).vm("x", "h2").vm("y", "h2").vm("z", "h2")
	b.running("x", "h3")
	b.running("y", "h3")
	id := b.queue("vm1")
	b.st.Hosts["h3"].MemFreeMiB = 60000 + 4096 // still the best after its incoming
	b.vm("w", "h2")                            // keep h2's score below h3's
	d := decisionFor(t, Schedule(b.st), id)
	if d.Dest != "h2" {
		t.Fatalf("decision %+v, want h2 because h3 is full", d)
	}
	if !strings.Contains(d.Reason, "h3 has no incoming slot free (2/2)") || !strings.Contains(d.Reason, "choice 2 of 2") {
		t.Errorf("reason %q does not explain skipping h3", d.Reason)
	}
}

func TestScheduleNoHeadOfLineBlocking(t *testing.T) {
	b := newBuilder().hosts("h", 6).vm("r1", "h1").vm("r2", "h1").vm("a", "h1").vm("b", "h2").vm("p", "h3").vm("q", "h3")
	b.running("r1", "h5")
	b.running("r2", "h6")
	a := b.queue("a")                // h1 outgoing full: waits
	bb := b.queue("b")               // h2 free: goes
	p := b.queue("p", pinned("h5"))  // h5 incoming 1/2: goes
	pp := b.queue("q", pinned("h5")) // h5 now full: waits
	ds := Schedule(b.st)
	if g := granted(ds); !slices.Equal(g, []string{bb, p}) {
		t.Fatalf("granted %v, want [%s %s]", g, bb, p)
	}
	for _, d := range ds {
		if d.Migration == a || d.Migration == pp {
			t.Errorf("waiting migration got decision %+v", d)
		}
	}
}

func TestScheduleKeepsOrderPerSource(t *testing.T) {
	cl := fsm.DefaultCluster("c1")
	cl.MaxOutgoing = 1
	b := newBuilder().hosts("h", 5).cluster(cl).vm("r", "h1").vm("a", "h1").vm("b", "h2").vm("c", "h1")
	r := b.running("r", "h5")
	a, bb, c := b.queue("a"), b.queue("b"), b.queue("c")
	if g := granted(Schedule(b.st)); !slices.Equal(g, []string{bb}) {
		t.Fatalf("granted %v, want only %s while h1 is busy", g, bb)
	}
	finish(b.st, b.st.Migrations[r], fsm.MigSucceeded)
	if g := granted(Schedule(b.st)); !slices.Equal(g, []string{a, bb}) || slices.Contains(g, c) {
		t.Fatalf("granted %v, want %s (first from h1) and %s, not %s", g, a, bb, c)
	}
}

func TestScheduleCountsItsOwnGrantsAsIncomingMemory(t *testing.T) {
	big := func(v *fsm.VM) { v.MemoryMiB = 20480 }
	b := newBuilder().host("h1", memFree(0)).host("h2", memFree(24576)).host("h3", memFree(21000)).host("h4", memFree(0))
	b.vm("a", "h1", big).vm("b", "h4", big)
	a, bb := b.queue("a"), b.queue("b")
	ds := Schedule(b.st)
	if da, db := decisionFor(t, ds, a), decisionFor(t, ds, bb); da.Dest != "h2" || db.Dest != "h3" {
		t.Fatalf("decisions %+v and %+v, want h2 then h3 (h2 cannot take both)", da, db)
	}
}

func TestScheduleBandwidth(t *testing.T) {
	auto := fsm.DefaultCluster("c1")
	auto.BandwidthMode = fsm.BandwidthAuto
	fixed := fsm.DefaultCluster("c1")
	cap100 := func(m *fsm.Migration) { m.BandwidthMiB = 100 }
	cases := []struct {
		name    string
		cl      fsm.Cluster
		running int
		queued  []func(*fsm.Migration)
		want    []uint64
	}{
		{name: "fixed cluster default", cl: fixed, queued: []func(*fsm.Migration){nil, nil}, want: []uint64{52, 52}},
		{name: "fixed own cap", cl: fixed, queued: []func(*fsm.Migration){cap100}, want: []uint64{100}},
		{name: "auto alone", cl: auto, queued: []func(*fsm.Migration){nil}, want: []uint64{1000}},
		{name: "auto shares with running", cl: auto, running: 1, queued: []func(*fsm.Migration){nil}, want: []uint64{500}},
		{name: "auto shares with this call's grants", cl: auto, queued: []func(*fsm.Migration){nil, nil, nil}, want: []uint64{1000, 500, 333}},
		// max-min fair: what the capped one leaves goes to the others
		{name: "auto capped by own cap", cl: auto, running: 2, queued: []func(*fsm.Migration){cap100, nil}, want: []uint64{100, 300}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder().hosts("h", 12).cluster(tc.cl)
			for i := range tc.running {
				v := fmt.Sprintf("r%d", i)
				b.vm(v, fmt.Sprintf("h%d", i+1)).running(v, fmt.Sprintf("h%d", 12-i))
			}
			var ids []string
			for i, opt := range tc.queued {
				v := fmt.Sprintf("q%d", i)
				b.vm(v, fmt.Sprintf("h%d", i+4))
				opts := []func(*fsm.Migration){}
				if opt != nil {
					opts = append(opts, opt)
				}
				ids = append(ids, b.queue(v, opts...))
			}
			ds := Schedule(b.st)
			for i, id := range ids {
				if d := decisionFor(t, ds, id); d.BandwidthMiB != tc.want[i] {
					t.Errorf("%s bandwidth %d, want %d", id, d.BandwidthMiB, tc.want[i])
				}
			}
		})
	}
}

// TestScheduleNeverExceedsSlotsProperty drives 50 queued migrations over two
// clusters to the end: apply every decision, complete, fail or retry random
// running ones (seeded), schedule again, and check every limit at every step.
func TestScheduleNeverExceedsSlotsProperty(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runScheduleProperty(t, seed) })
	}
}

func runScheduleProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	c2 := fsm.DefaultCluster("c2")
	c2.MaxOutgoing, c2.MaxIncoming, c2.MaxConcurrent = 1, 1, 2
	c2.BandwidthMode = fsm.BandwidthAuto
	b := newBuilder().hosts("a", 6).hosts("b", 3, inCluster("c2")).cluster(fsm.DefaultCluster("c1")).cluster(c2)
	var ids []string
	for i := range 50 {
		host := fmt.Sprintf("a%d", i%6+1)
		if i%5 == 4 {
			host = fmt.Sprintf("b%d", i%3+1)
		}
		vm := fmt.Sprintf("vm%02d", i)
		b.vm(vm, host, func(v *fsm.VM) { v.MemoryMiB = 1024 * (1 + rng.Uint64N(4)) })
		var opts []func(*fsm.Migration)
		if i%7 == 3 && host[0] == 'a' {
			opts = append(opts, pinned(fmt.Sprintf("a%d", (i+1)%6+1)))
		}
		ids = append(ids, b.queue(vm, opts...))
	}
	st := b.st
	step, grants, fails := 0, 0, 0
	for ; len(st.Queue) > 0; step++ {
		if step > 500 {
			t.Fatalf("not done after %d steps; queue %v", step, st.Queue)
		}
		ds := Schedule(st)
		for _, d := range ds {
			m := st.Migrations[d.Migration]
			if d.Fail == "" && (d.Dest == m.Source || slices.Contains(m.Tried, d.Dest) || st.Hosts[d.Dest].Cluster != m.Cluster) {
				t.Fatalf("step %d: bad grant %+v for %+v", step, d, m)
			}
		}
		apply(t, st, ds)
		checkSlots(t, st, step)
		fsm.ApplyShares(st, Reshare(st))
		checkSlots(t, st, step)
		grants += len(granted(ds))
		fails += len(ds) - len(granted(ds))
		running := st.Running()
		if len(running) == 0 && len(st.Queue) > 0 {
			t.Fatalf("step %d: nothing runs, nothing decided, queue %v: stuck", step, st.Queue)
		}
		for _, m := range running {
			switch r := rng.Float64(); {
			case r < 0.4:
				vm := st.VMs[m.VM]
				if st.Hosts[m.Dest].MemFreeMiB < vm.MemoryMiB {
					t.Fatalf("step %d: %s lands %d MiB on %s with %d MiB free", step, m.ID, vm.MemoryMiB, m.Dest, st.Hosts[m.Dest].MemFreeMiB)
				}
				finish(st, m, fsm.MigSucceeded)
			case r < 0.5 && m.Attempt == 0 && !m.Pinned: // retried once elsewhere, as the leader does
				m.State, m.Tried, m.Dest, m.Attempt = fsm.MigQueued, append(m.Tried, m.Dest), "", 1
			case r < 0.5:
				finish(st, m, fsm.MigFailed)
			}
		}
	}
	succeeded := 0
	for _, id := range ids {
		m := st.Migrations[id]
		if !m.State.Final() {
			t.Errorf("%s ended in %s", id, m.State)
		}
		if m.State == fsm.MigSucceeded {
			succeeded++
		}
	}
	t.Logf("%d steps, %d grants, %d failure decisions, %d of 50 succeeded", step, grants, fails, succeeded)
	if succeeded < 25 {
		t.Errorf("only %d of 50 succeeded; the scheduler fails too eagerly", succeeded)
	}
}

// checkSlots fails the test when any slot limit is exceeded in st.
func checkSlots(t *testing.T, st *fsm.State, step int) {
	t.Helper()
	use := st.Slots()
	for c, n := range use.Cluster {
		if lim := st.Cluster(c).MaxConcurrent; n > lim {
			t.Fatalf("step %d: cluster %s runs %d migrations, limit %d", step, c, n, lim)
		}
	}
	for h, n := range use.Out {
		if lim := st.Cluster(st.Hosts[h].Cluster).MaxOutgoing; n > lim {
			t.Fatalf("step %d: %s sends %d migrations, limit %d", step, h, n, lim)
		}
	}
	for h, n := range use.In {
		if lim := st.Cluster(st.Hosts[h].Cluster).MaxIncoming; n > lim {
			t.Fatalf("step %d: %s receives %d migrations, limit %d", step, h, n, lim)
		}
	}
	granted := map[string]uint64{}
	for _, m := range st.Running() {
		if !st.Sent(m) { // a sent transfer overcommits on purpose (fsm.TransferSent)
			granted[m.Cluster] += m.GrantedMiB
		}
	}
	for c, sum := range granted {
		if cl := st.Cluster(c); cl.BandwidthMode == fsm.BandwidthAuto && sum > cl.MigrationNetMiB {
			t.Fatalf("step %d: cluster %s grants %d MiB/s in all, over its %d MiB/s migration network", step, c, sum, cl.MigrationNetMiB)
		}
	}
}

// TestReshareFollowsRunningMigrations: in an auto cluster a grant lowers the
// running migrations in the same decision, and when one ends Reshare gives
// its part back to the others.
func TestReshareFollowsRunningMigrations(t *testing.T) {
	cl := fsm.DefaultCluster("c1")
	cl.BandwidthMode, cl.MigrationNetMiB = fsm.BandwidthAuto, 120
	b := newBuilder().hosts("h", 6).cluster(cl)
	b.vm("a", "h1").vm("b", "h2").vm("c", "h3")
	a := b.queue("a")
	st := b.st
	apply(t, st, Schedule(st))
	if got := st.Migrations[a].GrantedMiB; got != 120 {
		t.Fatalf("alone: %s granted %d MiB/s, want the whole 120", a, got)
	}
	bb := b.queue("b")
	c := b.queue("c", func(m *fsm.Migration) { m.BandwidthMiB = 20 })
	ds := Schedule(st)
	apply(t, st, ds)
	want := map[string]uint64{a: 50, bb: 50, c: 20}
	for id, w := range want {
		if got := st.Migrations[id].GrantedMiB; got != w {
			t.Errorf("three sharing: %s at %d MiB/s, want %d (decisions %+v)", id, got, w, ds)
		}
	}
	if len(Reshare(st)) != 0 {
		t.Errorf("reshare right after the grants: %v, want nothing", Reshare(st))
	}
	finish(st, st.Migrations[bb], fsm.MigSucceeded)
	shares := Reshare(st)
	fsm.ApplyShares(st, shares)
	if got := st.Migrations[a].GrantedMiB; got != 100 {
		t.Errorf("after %s ended: %s at %d MiB/s, want 100 (shares %v)", bb, a, got, shares)
	}
	if got := st.Migrations[c].GrantedMiB; got != 20 {
		t.Errorf("after %s ended: %s at %d MiB/s, want its own 20", bb, c, got)
	}
}

func TestFairSharesNeverExceedCapacity(t *testing.T) {
	cl := fsm.Cluster{BandwidthMode: fsm.BandwidthAuto, MigrationNetMiB: 1000}
	for n := 1; n <= 40; n++ {
		var ms []*fsm.Migration
		for i := range n {
			ms = append(ms, &fsm.Migration{ID: fmt.Sprint("m", i), BandwidthMiB: uint64(i%4) * 90})
		}
		var sum uint64
		for _, m := range ms {
			got := fairShares(cl.MigrationNetMiB, cl.MigrationNetMiB, ms)[m.ID]
			if m.BandwidthMiB > 0 && got > m.BandwidthMiB {
				t.Fatalf("%d sharing: %s gets %d, over its own cap %d", n, m.ID, got, m.BandwidthMiB)
			}
			sum += got
		}
		if sum > cl.MigrationNetMiB {
			t.Fatalf("%d sharing: %d MiB/s in all, over the 1000 MiB/s network", n, sum)
		}
	}
}
