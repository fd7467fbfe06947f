package sim

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

func TestIdleMigrationMovesVM(t *testing.T) {
	_, c, a, b := pair(t)
	if err := a.Define(VMSpec{Name: "web", MemoryMiB: 1024, VCPUs: 2}); err != nil {
		t.Fatal(err)
	}
	j, err := a.Migrate(context.Background(), "web", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.FreeMiB(); got != 16384-1024 {
		t.Errorf("dest free while incoming = %d MiB, want the VM's memory reserved (%d)", got, 16384-1024)
	}
	if !runUntilDone(t, c, j, 30*time.Second) {
		t.Fatal("idle 1 GiB VM at 100 MiB/s did not finish in 30s")
	}
	if err := j.Err(); err != nil {
		t.Fatalf("job failed: %v", err)
	}
	res := j.Result()
	// total ≈ memory/bandwidth: it switches over with ≤ 100ms of data left.
	if res.Elapsed < 10*time.Second || res.Elapsed > 10500*time.Millisecond {
		t.Errorf("elapsed %v, want ≈ 1024 MiB / 100 MiB/s ≈ 10.2s", res.Elapsed)
	}
	if res.Downtime < 20*time.Millisecond || res.Downtime > 130*time.Millisecond {
		t.Errorf("downtime %v, want within the 100ms allowed plus overhead", res.Downtime)
	}
	if res.DataRemaining != 0 || res.MemProcessed < 1024*MiB || res.MemIteration != 1 {
		t.Errorf("result %+v: want nothing remaining, all memory sent, one pass", res)
	}
	if slices.Contains(a.VMNames(), "web") {
		t.Error("source still lists the VM")
	}
	doms, _ := b.Domains(context.Background())
	if len(doms) != 1 || doms[0].Name != "web" || doms[0].State != fsm.VMRunning {
		t.Errorf("dest domains = %+v, want web running", doms)
	}
	if a.FreeMiB() != 16384 || b.FreeMiB() != 16384-1024 || b.Incoming() != 0 {
		t.Errorf("free a=%d b=%d incoming=%d", a.FreeMiB(), b.FreeMiB(), b.Incoming())
	}
}

func TestAbortKeepsVMOnSource(t *testing.T) {
	_, c, a, b := pair(t)
	if err := a.Define(VMSpec{Name: "db", MemoryMiB: 2048, DirtyMiBps: 10}); err != nil {
		t.Fatal(err)
	}
	j, err := a.Migrate(context.Background(), "db", migrate.Params{DestURI: b.URI(), BandwidthMiB: 50})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Second)
	if err := j.Abort(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-j.Done():
	default:
		t.Fatal("Abort returned but the job is not done")
	}
	if !errors.Is(j.Err(), ErrAborted) {
		t.Errorf("err = %v, want ErrAborted", j.Err())
	}
	if _, state, ok := a.VM("db"); !ok || state != fsm.VMRunning {
		t.Errorf("source VM ok=%v state=%q, want running", ok, state)
	}
	if slices.Contains(b.VMNames(), "db") {
		t.Error("dest lists the aborted VM")
	}
	waitFor(t, "dest to drop its reservation", 5*time.Second, func() bool { return b.Incoming() == 0 })
	if err := j.Abort(); !errors.Is(err, ErrNoJob) {
		t.Errorf("second abort = %v, want ErrNoJob", err)
	}
	// the VM is free to migrate again
	j2, err := a.Migrate(context.Background(), "db", migrate.Params{DestURI: b.URI(), BandwidthMiB: 500})
	if err != nil {
		t.Fatalf("migrate after abort: %v", err)
	}
	if !runUntilDone(t, c, j2, time.Minute) || j2.Err() != nil {
		t.Fatalf("second migration: %v", j2.Err())
	}
}

func TestDirtyGuestTakesSeveralPasses(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "busy", MemoryMiB: 1024, DirtyMiBps: 50})
	j, err := a.Migrate(context.Background(), "busy", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !runUntilDone(t, c, j, time.Minute) || j.Err() != nil {
		t.Fatalf("did not complete: %v", j.Err())
	}
	res := j.Result()
	// remaining falls at bw − dirty = 50 MiB/s: ≈ (1024−10)/50 ≈ 20s, in several passes
	if res.MemIteration < 3 || res.Elapsed < 19*time.Second || res.Elapsed > 22*time.Second {
		t.Errorf("iterations %d elapsed %v, want ≥3 passes in ≈20s", res.MemIteration, res.Elapsed)
	}
	if res.MemProcessed <= res.MemTotal {
		t.Errorf("processed %d ≤ total %d: re-sent pages not counted", res.MemProcessed, res.MemTotal)
	}
}

func TestStallingGuestNeverConvergesAlone(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "hot", MemoryMiB: 512, DirtyMiBps: 200})
	j, _ := a.Migrate(context.Background(), "hot", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 500 * time.Millisecond})
	if runUntilDone(t, c, j, time.Minute) {
		t.Fatalf("dirty rate 2× bandwidth completed without help: %+v", j.Result())
	}
	st, _ := j.Stats()
	if st.DataRemaining != st.DataTotal || st.MemIteration < 5 || st.MemDirtyRate != 200*MiB {
		t.Errorf("stats %+v: want all memory remaining after many passes at 200 MiB/s dirty", st)
	}
	_ = j.Abort()
}

func TestAutoConvergeThrottles(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "warm", MemoryMiB: 128, DirtyMiBps: 120})
	j, _ := a.Migrate(context.Background(), "warm", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 100 * time.Millisecond, AutoConverge: true})
	if !runUntilDone(t, c, j, 2*time.Minute) || j.Err() != nil {
		t.Fatalf("auto-converge did not complete: %v", j.Err())
	}
	if th := j.Result().AutoConvergeThrottle; th < 20 {
		t.Errorf("throttle %d%%, want ≥ 20%%", th)
	}
}

func TestPostCopyMovesAtOnce(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "hot", MemoryMiB: 1024, DirtyMiBps: 300})
	j, _ := a.Migrate(context.Background(), "hot", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, AllowPostCopy: true})
	c.Advance(3 * time.Second)
	if err := j.StartPostCopy(); err != nil {
		t.Fatal(err)
	}
	c.Advance(100 * time.Millisecond)
	waitFor(t, "VM to run on dest", 5*time.Second, func() bool { return slices.Contains(b.VMNames(), "hot") })
	if slices.Contains(a.VMNames(), "hot") {
		t.Error("source still lists the VM in post-copy")
	}
	if err := j.Abort(); !errors.Is(err, ErrPostCopy) {
		t.Errorf("abort in post-copy = %v, want ErrPostCopy", err)
	}
	if !runUntilDone(t, c, j, time.Minute) || j.Err() != nil {
		t.Fatalf("post-copy did not complete: %v", j.Err())
	}
	res := j.Result()
	if !res.PostCopy || res.Downtime > 50*time.Millisecond || res.DataRemaining != 0 {
		t.Errorf("result %+v: want post-copy, small downtime, nothing left", res)
	}
	// 3s of pre-copy, then ≤ 1 GiB at 100 MiB/s
	if res.Elapsed < 5*time.Second || res.Elapsed > 14*time.Second {
		t.Errorf("elapsed %v", res.Elapsed)
	}
}

func TestPostCopyNeedsPermission(t *testing.T) {
	_, _, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 256})
	j, _ := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI()})
	if err := j.StartPostCopy(); !errors.Is(err, ErrPostCopy) {
		t.Errorf("StartPostCopy without AllowPostCopy = %v, want ErrPostCopy", err)
	}
	_ = j.Abort()
}

func TestInjectedFailures(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 1000})
	boom := errors.New("connection reset")
	a.FailNextMigrationAt(0.5, boom)
	j, err := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !runUntilDone(t, c, j, time.Minute) {
		t.Fatal("failing job did not end")
	}
	if !errors.Is(j.Err(), boom) {
		t.Fatalf("err = %v, want the injected one", j.Err())
	}
	if p := j.Result().MemProcessed; p < 499*MiB || p > 501*MiB {
		t.Errorf("failed after %d MiB, want 500", p/MiB)
	}
	if !slices.Contains(a.VMNames(), "v") || slices.Contains(b.VMNames(), "v") {
		t.Error("VM not (only) on source after failure")
	}
	// the injection is one-shot
	j2, err := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 1000})
	if err != nil {
		t.Fatalf("migrate after failure: %v", err)
	}
	if !runUntilDone(t, c, j2, time.Minute) || j2.Err() != nil {
		t.Fatalf("next migration: %v", j2.Err())
	}
}

func TestRefusals(t *testing.T) {
	r, _, a, b := pair(t)
	small, _ := r.AddHost(HostSpec{Name: "small", MemTotalMiB: 1024})
	_ = a.Define(VMSpec{Name: "big", MemoryMiB: 2048})
	_ = a.Define(VMSpec{Name: "off", MemoryMiB: 128})
	_ = a.SetState("off", fsm.VMShutoff)
	ctx := context.Background()

	cases := []struct {
		name, vm, uri string
		want          error
	}{
		{"no memory", "big", small.URI(), ErrNoMemory},
		{"same host", "big", a.URI(), ErrSameHost},
		{"unknown host", "big", "sim://nowhere", ErrUnknownHost},
		{"bad scheme", "big", "qemu+tcp://x/system", ErrUnknownHost},
		{"no domain", "ghost", b.URI(), migrate.ErrNoDomain},
		{"shut off", "off", b.URI(), ErrNotRunning},
	}
	for _, tc := range cases {
		if _, err := a.Migrate(ctx, tc.vm, migrate.Params{DestURI: tc.uri}); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	b.RefuseNextIncoming(ErrBusy)
	if _, err := a.Migrate(ctx, "big", migrate.Params{DestURI: b.URI()}); !errors.Is(err, ErrBusy) {
		t.Errorf("refused incoming: err = %v, want ErrBusy", err)
	}
	// a refused migration leaves the VM free; a running one claims it
	j, err := a.Migrate(ctx, "big", migrate.Params{DestURI: b.URI()})
	if err != nil {
		t.Fatalf("migrate after refusals: %v", err)
	}
	if _, err := a.Migrate(ctx, "big", migrate.Params{DestURI: b.URI()}); !errors.Is(err, ErrBusy) {
		t.Errorf("second migration: err = %v, want ErrBusy", err)
	}
	if err := a.Remove("big"); !errors.Is(err, ErrBusy) {
		t.Errorf("remove while migrating: err = %v, want ErrBusy", err)
	}
	_ = j.Abort()
	if err := a.Remove("big"); err != nil {
		t.Errorf("remove after abort: %v", err)
	}
	if err := a.Define(VMSpec{Name: "off", MemoryMiB: 1}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate define: err = %v, want ErrExists", err)
	}
}

func TestSetDirtyRateReachesRunningJob(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 512, DirtyMiBps: 400})
	j, _ := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100})
	c.Advance(20 * time.Second)
	if st, _ := j.Stats(); st.DataRemaining != st.DataTotal {
		t.Fatalf("hot guest made progress: %+v", st)
	}
	if err := a.SetDirtyRate("v", 0); err != nil {
		t.Fatal(err)
	}
	if !runUntilDone(t, c, j, 30*time.Second) || j.Err() != nil {
		t.Fatalf("quiet guest did not complete: %v", j.Err())
	}
}

func TestCopyStorageSendsDisksFirst(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 256, Disks: []fsm.Disk{
		{Target: "vda", SizeBytes: 512 * MiB}, {Target: "vdb", StorageDomain: "nfs", SizeBytes: 1 << 40},
	}})
	j, _ := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 128, CopyStorage: []string{"vda"}})
	c.Advance(2 * time.Second)
	st, _ := j.Stats()
	if st.DiskTotal != 512*MiB || st.DiskProcessed != 256*MiB || st.MemProcessed != 0 {
		t.Errorf("after 2s at 128 MiB/s: %+v, want 256 MiB of the local disk and no memory", st)
	}
	if !runUntilDone(t, c, j, time.Minute) || j.Err() != nil {
		t.Fatalf("did not complete: %v", j.Err())
	}
	if el := j.Result().Elapsed; el < 5*time.Second || el > 6500*time.Millisecond {
		t.Errorf("elapsed %v, want ≈ (512+256) MiB / 128 MiB/s = 6s", el)
	}
}

func TestWorkingSetBoundsWhatStaysDirty(t *testing.T) {
	_, c, a, b := pair(t)
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 1024, DirtyMiBps: 200, WorkingSetMiB: 256})
	j, _ := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 100 * time.Millisecond})
	if runUntilDone(t, c, j, time.Minute) {
		t.Fatalf("hot working set of 256 MiB at 2× bandwidth converged: %+v", j.Result())
	}
	// the rest of memory crossed once; the working set stays dirty
	if st, _ := j.Stats(); st.MemRemaining != 256*MiB || st.MemIteration < 5 {
		t.Errorf("stats %+v, want 256 MiB remaining after several passes", st)
	}
	// a large enough allowed downtime lets it through in one pause
	_ = j.SetMaxDowntime(3 * time.Second)
	if !runUntilDone(t, c, j, time.Minute) || j.Err() != nil {
		t.Fatalf("did not complete: %v", j.Err())
	}
	if d := j.Result().Downtime; d < 2*time.Second || d > 2600*time.Millisecond {
		t.Errorf("downtime %v, want ≈ 256 MiB / 100 MiB/s", d)
	}
}

// The job computes events exactly inside a step, so the step size changes
// nothing but how often the state is visible.
func TestResultsDoNotDependOnStep(t *testing.T) {
	var first migrate.JobStats
	for i, step := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 3 * time.Second} {
		c := NewManualClock()
		r := NewRegistry(Config{Clock: c, Step: step})
		a, _ := r.AddHost(HostSpec{Name: "a", MemTotalMiB: 8192})
		b, _ := r.AddHost(HostSpec{Name: "b", MemTotalMiB: 8192})
		_ = a.Define(VMSpec{Name: "v", MemoryMiB: 2048, DirtyMiBps: 120, WorkingSetMiB: 1024})
		j, err := a.Migrate(context.Background(), "v", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, MaxDowntime: 300 * time.Millisecond, AutoConverge: true})
		if err != nil {
			t.Fatal(err)
		}
		if !runUntilDone(t, c, j, 10*time.Minute) || j.Err() != nil {
			t.Fatalf("step %v: %v", step, j.Err())
		}
		res := j.Result()
		r.Close()
		if i == 0 {
			first = res
			t.Logf("elapsed %v downtime %v passes %d throttle %d%% sent %d MiB", res.Elapsed, res.Downtime, res.MemIteration, res.AutoConvergeThrottle, res.MemProcessed/MiB)
			continue
		}
		near := func(x, y time.Duration) bool { return (x - y).Abs() < time.Millisecond }
		if !near(res.Elapsed, first.Elapsed) || !near(res.Downtime, first.Downtime) || res.MemIteration != first.MemIteration ||
			res.AutoConvergeThrottle != first.AutoConvergeThrottle || max(res.MemProcessed, first.MemProcessed)-min(res.MemProcessed, first.MemProcessed) > MiB {
			t.Errorf("step %v: %+v\nstep 10ms: %+v", step, res, first)
		}
	}
}
