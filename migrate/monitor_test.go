package migrate_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// These tests drive Watch in lockstep with a manual sim clock: advance one
// sample interval, then wait until Watch has reported that sample. Every run
// is therefore the same run, and a minute of simulated migration takes
// milliseconds.

const interval = 500 * time.Millisecond

// harness is one migration from host a to host b under Watch.
type harness struct {
	t     *testing.T
	clock *sim.Clock
	a, b  *sim.Host

	mu       sync.Mutex
	reports  []fsm.Progress
	watching chan struct{} // closed once Watch subscribed its ticker

	stats migrate.JobStats
	err   error
	done  chan struct{}
}

// start defines vm on a, migrates it to b at bwMiB under pol and watches it.
// arm runs on the source host before the migration starts.
func start(t *testing.T, vm sim.VMSpec, bwMiB uint64, pol string, cfg migrate.MonitorConfig, arm ...func(a *sim.Host)) (*harness, migrate.Job, context.CancelFunc) {
	t.Helper()
	h := &harness{t: t, clock: sim.NewManualClock(), watching: make(chan struct{}), done: make(chan struct{})}
	reg := sim.NewRegistry(sim.Config{Clock: h.clock})
	t.Cleanup(reg.Close)
	h.a, _ = reg.AddHost(sim.HostSpec{Name: "a", MemTotalMiB: 65536, CPUs: 16})
	h.b, _ = reg.AddHost(sim.HostSpec{Name: "b", MemTotalMiB: 65536, CPUs: 16})
	if err := h.a.Define(vm); err != nil {
		t.Fatal(err)
	}
	for _, f := range arm {
		f(h.a)
	}
	p, err := migrate.PolicyByName(pol)
	if err != nil {
		t.Fatal(err)
	}
	if pol == migrate.PolicySuspendWorkload && !fitFinal {
		// the sim's remainder always fits the fitted downtime: test the
		// suspend that follows it with a final downtime too short
		p.FinalDowntime = 300 * time.Millisecond
	}
	if pol == migrate.PolicyAuto {
		// as the executor does: sample on the source, predict, pick
		r, err := h.a.SampleDirtyRate(context.Background(), migrate.DomainRef{Name: vm.Name}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pred := migrate.Predict(vm.MemoryMiB<<20, r.InUseBytes, r.Bps, bwMiB<<20, p.DowntimeSteps[len(p.DowntimeSteps)-1], true)
		p, cfg.Prediction = migrate.AutoPolicy(pred), &pred
	}
	job, err := h.a.Migrate(context.Background(), vm.Name, p.Params(migrate.Params{DestURI: h.b.URI(), BandwidthMiB: bwMiB}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.VM = vm.Name
	cfg.Interval = interval
	cfg.Clock = h.clock.Now
	cfg.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
		c, stop := h.clock.NewTicker(d)
		close(h.watching)
		return c, stop
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		defer close(h.done)
		h.stats, h.err = migrate.Watch(ctx, job, p, cfg, func(pr fsm.Progress) {
			h.mu.Lock()
			h.reports = append(h.reports, pr)
			h.mu.Unlock()
		})
	}()
	<-h.watching
	return h, job, cancel
}

func (h *harness) nReports() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reports)
}

func (h *harness) last() fsm.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) == 0 {
		return fsm.Progress{}
	}
	return h.reports[len(h.reports)-1]
}

func (h *harness) finished() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// step advances one interval and waits for Watch to take that sample (or end).
func (h *harness) step() {
	h.t.Helper()
	n := h.nReports()
	h.clock.Advance(interval)
	waitFor(h.t, "Watch to sample", 5*time.Second, func() bool { return h.nReports() > n || h.finished() })
}

// run steps until Watch returns, failing after limit of simulated time.
func (h *harness) run(limit time.Duration) {
	h.t.Helper()
	for sim := time.Duration(0); !h.finished(); sim += interval {
		if sim > limit {
			h.t.Fatalf("Watch still running after %v simulated; last progress %+v", limit, h.last())
		}
		h.step()
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Microsecond) // poll interval, bounded by the deadline
	}
}

func (h *harness) onlyOn(host *sim.Host, vm string) bool {
	return slices.Contains(host.VMNames(), vm) && !slices.Contains(other(h, host).VMNames(), vm)
}

func other(h *harness, x *sim.Host) *sim.Host {
	if x == h.a {
		return h.b
	}
	return h.a
}

// timeline logs when each action was taken, in simulated time.
func (h *harness) timeline() {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.reports {
		for ; n < len(p.Actions); n++ {
			h.t.Logf("%6.1fs iter %2d %5.1f%% remaining %4d MiB: %s", float64(p.ElapsedMs)/1000, p.Iteration, p.Percent, p.RemainingBytes>>20, p.Actions[n])
		}
	}
}

// fitFinal keeps suspend-workload's fitted final downtime in start; the
// tests of its suspend turn it off (a final downtime too short to help).
var fitFinal = false

// stalling dirties memory twice as fast as the 32 MiB/s link sends it.
var stalling = sim.VMSpec{Name: "hot", MemoryMiB: 256, VCPUs: 2, DirtyMiBps: 64}

func TestWatchIdleCompletes(t *testing.T) {
	h, _, _ := start(t, sim.VMSpec{Name: "idle", MemoryMiB: 1024}, 100, "", migrate.MonitorConfig{})
	h.run(time.Minute)
	if h.err != nil {
		t.Fatal(h.err)
	}
	if h.stats.Elapsed < 10*time.Second || h.stats.Elapsed > 11*time.Second || h.stats.Downtime > 150*time.Millisecond {
		t.Errorf("stats %+v", h.stats)
	}
	last := h.last()
	if last.Percent != 100 || len(last.Actions) != 0 || last.RemainingBytes != 0 {
		t.Errorf("final progress %+v, want 100%% and no actions", last)
	}
	if !h.onlyOn(h.b, "idle") {
		t.Error("VM not only on dest")
	}
	// percent rises monotonically, held at 99 until the end
	prev := -1.0
	for i, p := range h.reports[:len(h.reports)-1] {
		if p.Percent < prev || p.Percent > 99 {
			t.Fatalf("report %d percent %.1f after %.1f", i, p.Percent, prev)
		}
		prev = p.Percent
	}
	// completed in its first pass: that pass sent the whole GiB; its
	// first bytes moved at the first sample
	if last.FirstPassBytes != 1<<30 || last.FirstByteMs <= 0 || last.FirstByteMs > interval.Milliseconds() {
		t.Errorf("learned first pass %d bytes, first byte at %d ms; want 1 GiB, within the first sample", last.FirstPassBytes, last.FirstByteMs)
	}
	mid := h.reports[len(h.reports)/2]
	if mid.MiBps != 100 || mid.Iteration != 1 || mid.MaxDowntimeMs != 100 || mid.TotalBytes != 1<<30 {
		t.Errorf("mid-run progress %+v", mid)
	}
}

func TestMinimalDowntimeRaisesThenAborts(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if !errors.Is(h.err, migrate.ErrNotConverging) {
		t.Fatalf("err = %v, want ErrNotConverging", h.err)
	}
	want := []string{"downtime 150ms", "downtime 200ms", "downtime 300ms", "downtime 400ms", "downtime 500ms", "abort: not converging"}
	if got := h.last().Actions; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
	if !h.onlyOn(h.a, "hot") {
		t.Error("aborted VM not only on source")
	}
	if h.stats.AutoConvergeThrottle < 20 {
		t.Errorf("throttle %d%%: auto-converge was not on", h.stats.AutoConvergeThrottle)
	}
}

func TestMinimalDowntimeCompletesWhenConverging(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{})
	for len(h.last().Actions) < 2 {
		h.step()
	}
	if err := h.a.SetDirtyRate("hot", 4); err != nil { // the workload calms down
		t.Fatal(err)
	}
	h.run(2 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatalf("err = %v", h.err)
	}
	if got := h.last().Actions; len(got) != 2 || got[1] != "downtime 200ms" {
		t.Errorf("actions %q", got)
	}
	if !h.onlyOn(h.b, "hot") || h.stats.Downtime > 250*time.Millisecond {
		t.Errorf("downtime %v, on dest %v", h.stats.Downtime, h.b.VMNames())
	}
}

func TestPostCopySwitchesAfterTwoStalls(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyPostCopy, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatal(h.err)
	}
	if got, want := h.last().Actions, []string{"downtime 150ms", "post-copy"}; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
	// the switch is stamped with the job time of the stall that caused it
	if at := h.last().PostCopyAtMs; at <= 0 || at > h.last().ElapsedMs {
		t.Errorf("post-copy at %d ms of a %d ms job", at, h.last().ElapsedMs)
	}
	if !h.stats.PostCopy || h.stats.Downtime > 50*time.Millisecond || !h.onlyOn(h.b, "hot") {
		t.Errorf("stats %+v", h.stats)
	}
}

// TestSuspendWorkloadPausesTheGuest: a guest dirtying twice as fast as the
// link sends never converges by downtime steps; after the last one the
// policy pauses it, pre-copy then completes, and the pause is in the
// reported downtime.
func TestSuspendWorkloadPausesTheGuest(t *testing.T) {
	vm := stalling
	vm.MemoryMiB = 128
	h, _, _ := start(t, vm, 32, migrate.PolicySuspendWorkload, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatal(h.err)
	}
	want := []string{"downtime 150ms", "downtime 200ms", "downtime 300ms", "downtime 400ms", "downtime 500ms", "final downtime 300ms", "suspend"}
	last := h.last()
	if !slices.Equal(last.Actions, want) {
		t.Errorf("actions %q, want %q", last.Actions, want)
	}
	if last.SuspendedAtMs <= 0 || last.SuspendedAtMs > last.ElapsedMs {
		t.Fatalf("suspended at %d ms of a %d ms job", last.SuspendedAtMs, last.ElapsedMs)
	}
	pause := time.Duration(last.ElapsedMs-last.SuspendedAtMs) * time.Millisecond
	if h.stats.Downtime < pause || h.stats.Downtime < 500*time.Millisecond {
		t.Errorf("downtime %v, want at least the %v the guest stood suspended", h.stats.Downtime, pause)
	}
	if !h.onlyOn(h.b, "hot") {
		t.Errorf("VM not only on dest: %v", h.b.VMNames())
	}
}

// TestSuspendWorkloadFitsItsFinalDowntime: after its steps the policy
// allows a downtime fitted to the remaining data; QEMU (here the sim)
// pauses the guest at its next check and the move completes without the
// suspend.
func TestSuspendWorkloadFitsItsFinalDowntime(t *testing.T) {
	fitFinal = true
	defer func() { fitFinal = false }()
	vm := stalling
	vm.MemoryMiB = 128
	h, _, _ := start(t, vm, 32, migrate.PolicySuspendWorkload, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatal(h.err)
	}
	want := []string{"downtime 150ms", "downtime 200ms", "downtime 300ms", "downtime 400ms", "downtime 500ms", "final downtime 6.5s"}
	if got := h.last().Actions; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q (128 MiB at 32 MiB/s: 4 s × 1.5 + 0.5 s)", got, want)
	}
	if !h.onlyOn(h.b, "hot") || h.stats.Downtime < 3*time.Second || h.stats.Downtime > 6500*time.Millisecond {
		t.Errorf("downtime %v (want the seconds the remainder takes), dest %v", h.stats.Downtime, h.b.VMNames())
	}
}

// TestSuspendedGuestStuckCopyAborts: a suspended guest whose copy stops
// falling (the link went down) is aborted after SuspendedTimeout, and the
// job resumes the guest on its source.
func TestSuspendedGuestStuckCopyAborts(t *testing.T) {
	vm := stalling
	vm.MemoryMiB = 128
	h, _, _ := start(t, vm, 32, migrate.PolicySuspendWorkload, migrate.MonitorConfig{SuspendedTimeout: 5 * time.Second})
	for !slices.Contains(h.last().Actions, "suspend") {
		if h.finished() {
			t.Fatalf("Watch ended before the suspend: %v, actions %q", h.err, h.last().Actions)
		}
		h.step()
	}
	h.a.SetLinkDown(true)
	h.run(time.Minute)
	h.timeline()
	if !errors.Is(h.err, migrate.ErrProgressTimeout) {
		t.Fatalf("err = %v, want ErrProgressTimeout", h.err)
	}
	if got := h.last().Actions; got[len(got)-1] != "abort: no progress while suspended" {
		t.Errorf("actions %q", got)
	}
	if !h.onlyOn(h.a, "hot") {
		t.Error("VM not only on source")
	}
}

// TestAutoPicksPostCopyForAGuestFasterThanTheLink: the prediction says
// pre-copy cannot converge, auto switches to post-copy at the first stall,
// and every report carries the prediction.
func TestAutoPicksPostCopyForAGuestFasterThanTheLink(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyAuto, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatal(h.err)
	}
	last := h.last()
	if pr := last.Prediction; pr == nil || pr.Choice != migrate.ChoicePostCopy || pr.Converges {
		t.Fatalf("prediction %+v, want post-copy, not converging", pr)
	}
	if !slices.Equal(last.Actions, []string{"post-copy"}) || !h.onlyOn(h.b, "hot") {
		t.Errorf("actions %q, on dest %v", last.Actions, h.b.VMNames())
	}
	// the first pass sent the guest's memory, within a sample's bytes
	// (16 MiB at 32 MiB/s: the pass ended between two samples)
	if d := int64(last.FirstPassBytes) - int64(stalling.MemoryMiB<<20); d < -16<<20 || d > 16<<20 {
		t.Errorf("learned first pass %d bytes of %d MiB", last.FirstPassBytes, stalling.MemoryMiB)
	}
	if last.DirtySetBytes == 0 || last.DirtySetBytes > stalling.MemoryMiB<<20 {
		t.Errorf("learned dirty set %d bytes", last.DirtySetBytes)
	}
	t.Logf("predicted %d ms, took %v", last.Prediction.TotalMs, h.stats.Elapsed)
}

// TestAutoRunsPrecopyForACalmGuest: a guest dirtying little is predicted
// to converge: pre-copy without throttling, no action needed.
func TestAutoRunsPrecopyForACalmGuest(t *testing.T) {
	calm := sim.VMSpec{Name: "calm", MemoryMiB: 256, VCPUs: 2, DirtyMiBps: 4}
	h, _, _ := start(t, calm, 32, migrate.PolicyAuto, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	if h.err != nil {
		t.Fatal(h.err)
	}
	last := h.last()
	if pr := last.Prediction; pr == nil || pr.Choice != migrate.ChoicePrecopy || !pr.Converges {
		t.Fatalf("prediction %+v, want pre-copy, converging", pr)
	}
	if len(last.Actions) != 0 || h.stats.AutoConvergeThrottle != 0 {
		t.Errorf("actions %q, throttle %d%%", last.Actions, h.stats.AutoConvergeThrottle)
	}
	if d := time.Duration(last.Prediction.TotalMs)*time.Millisecond - h.stats.Elapsed; d > time.Second || d < -time.Second {
		t.Errorf("predicted %d ms, took %v", last.Prediction.TotalMs, h.stats.Elapsed)
	}
}

// TestSuspendWorkloadSuspendsAtTheLimit: a large guest's passes are so
// long that the completion limit comes before the downtime steps ran out;
// suspend-workload then pauses the guest instead of aborting, and moves it.
func TestSuspendWorkloadSuspendsAtTheLimit(t *testing.T) {
	big := sim.VMSpec{Name: "big", MemoryMiB: 1024, VCPUs: 2, DirtyMiBps: 64}
	h, _, _ := start(t, big, 32, migrate.PolicySuspendWorkload, migrate.MonitorConfig{})
	h.run(3 * time.Minute)
	h.timeline()
	if h.err != nil {
		t.Fatal(h.err)
	}
	last := h.last()
	if got := last.Actions[len(last.Actions)-1]; got != "suspend: time limit" || len(last.Actions) > 5 {
		t.Fatalf("actions %q, want fewer than the five steps, then a suspend at the time limit", last.Actions)
	}
	if at := time.Duration(last.SuspendedAtMs) * time.Millisecond; at < 64*time.Second || at > 65*time.Second {
		t.Errorf("suspended at %v, want at the 64 s completion limit of 1 GiB", at)
	}
	if !h.onlyOn(h.b, "big") || h.stats.Downtime < time.Second {
		t.Errorf("downtime %v, dest %v", h.stats.Downtime, h.b.VMNames())
	}
}

// TestSuspendedMigrationIgnoresCompletionLimit: once paused, a guest is
// not aborted by the completion limit (that would pause it for nothing);
// its copy completes however long the remainder takes.
func TestSuspendedMigrationIgnoresCompletionLimit(t *testing.T) {
	vm := stalling
	vm.MemoryMiB = 128
	// 29 s allowed (128 MiB counts as 1 GiB): the guest is paused at 28 s
	// and its 128 MiB take 4 s more at 32 MiB/s
	const limit = 29 * time.Second
	h, _, _ := start(t, vm, 32, migrate.PolicySuspendWorkload, migrate.MonitorConfig{CompletionPerGiB: limit})
	h.run(2 * time.Minute)
	h.timeline()
	last := h.last()
	if !slices.Contains(last.Actions, "suspend") || time.Duration(last.SuspendedAtMs)*time.Millisecond >= limit {
		t.Fatalf("the guest was not suspended before the %v limit (actions %q, at %d ms): the test's premise broke", limit, last.Actions, last.SuspendedAtMs)
	}
	if h.err != nil {
		t.Fatalf("suspended migration failed: %v", h.err)
	}
	if h.stats.Elapsed <= limit || !h.onlyOn(h.b, "hot") {
		t.Errorf("job ended after %v (want past the %v limit), on dest %v", h.stats.Elapsed, limit, h.b.VMNames())
	}
}

func TestPrecopyHitsCompletionTimeout(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyPrecopy, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	if !errors.Is(h.err, migrate.ErrCompletionTimeout) {
		t.Fatalf("err = %v, want ErrCompletionTimeout", h.err)
	}
	// 256 MiB counts as 1 GiB: 64s
	if el := h.stats.Elapsed; el < 64*time.Second || el > 65*time.Second {
		t.Errorf("aborted at %v, want 64s", el)
	}
	if got := h.last().Actions; !slices.Equal(got, []string{"abort: completion timeout"}) {
		t.Errorf("actions %q", got)
	}
	if !h.onlyOn(h.a, "hot") {
		t.Error("VM not only on source")
	}
}

func TestProgressTimeout(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyPrecopy, migrate.MonitorConfig{ProgressTimeout: 10 * time.Second})
	h.run(time.Minute)
	if !errors.Is(h.err, migrate.ErrProgressTimeout) {
		t.Fatalf("err = %v, want ErrProgressTimeout", h.err)
	}
	if el := h.stats.Elapsed; el < 10*time.Second || el > 11*time.Second {
		t.Errorf("aborted at %v, want ≈10s", el)
	}
	if !h.onlyOn(h.a, "hot") {
		t.Error("VM not only on source")
	}
}

func TestCancelAborts(t *testing.T) {
	h, job, cancel := start(t, stalling, 32, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{})
	for i := 0; i < 4; i++ {
		h.step()
	}
	cancel()
	waitFor(t, "Watch to return", 5*time.Second, h.finished)
	if !errors.Is(h.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", h.err)
	}
	if job.Err() == nil || !h.onlyOn(h.a, "hot") {
		t.Errorf("job err %v, source %v: want aborted, VM on source", job.Err(), h.a.VMNames())
	}
}

func TestHypervisorFailureIsReturned(t *testing.T) {
	boom := errors.New("destination qemu crashed")
	h, _, _ := start(t, sim.VMSpec{Name: "v", MemoryMiB: 512}, 100, "", migrate.MonitorConfig{},
		func(a *sim.Host) { a.FailNextMigrationAt(0.5, boom) })
	h.run(time.Minute)
	if !errors.Is(h.err, boom) {
		t.Fatalf("err = %v, want the hypervisor's", h.err)
	}
	if h.stats.MemProcessed < 255<<20 || h.stats.MemProcessed > 257<<20 {
		t.Errorf("stats %+v, want the job's last (≈256 MiB sent)", h.stats)
	}
	if !h.onlyOn(h.a, "v") {
		t.Error("VM not only on source")
	}
}

// endingJob is a job that completes while Watch decides to abort it.
type endingJob struct {
	done chan struct{}
	once sync.Once
}

func (j *endingJob) Stats() (migrate.JobStats, error) {
	return migrate.JobStats{DataTotal: 100, DataRemaining: 50, MemIteration: 1}, nil
}
func (j *endingJob) Done() <-chan struct{} { return j.done }
func (j *endingJob) Err() error            { return nil }
func (j *endingJob) Result() migrate.JobStats {
	return migrate.JobStats{DataTotal: 100, Downtime: time.Millisecond}
}
func (j *endingJob) Abort() error {
	j.once.Do(func() { close(j.done) })
	return errors.New("switch-over in progress")
}
func (j *endingJob) StartPostCopy() error               { return nil }
func (j *endingJob) SetMaxDowntime(time.Duration) error { return nil }
func (j *endingJob) SetBandwidth(uint64) error          { return nil }
func (j *endingJob) InterruptPostCopy() error           { return nil }
func (j *endingJob) Suspend() error                     { return nil }

func TestAbortRacingCompletionReportsSuccess(t *testing.T) {
	clock := sim.NewManualClock()
	job := &endingJob{done: make(chan struct{})}
	subscribed := make(chan struct{})
	cfg := migrate.MonitorConfig{VM: "v", ProgressTimeout: time.Second, Clock: clock.Now,
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			defer close(subscribed)
			return clock.NewTicker(d)
		}}
	res := make(chan error, 1)
	var got migrate.JobStats
	var mu sync.Mutex
	samples := 0
	go func() {
		var err error
		got, err = migrate.Watch(context.Background(), job, migrate.Policy{}, cfg, func(fsm.Progress) {
			mu.Lock()
			samples++
			mu.Unlock()
		})
		res <- err
	}()
	<-subscribed
	n := func() int { mu.Lock(); defer mu.Unlock(); return samples }
	for i := 1; i <= 3; i++ { // the progress timeout expires on the third sample
		clock.Advance(interval)
		waitFor(t, "a sample", 5*time.Second, func() bool { return n() >= i })
	}
	select {
	case err := <-res:
		if err != nil || got.Downtime != time.Millisecond {
			t.Errorf("Watch = %+v, %v; want the completed job's result", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return")
	}
}

// A hot working set keeps a migration at a high percentage: the rest of
// memory crosses once, the working set never. The completion limit ends it.
func TestStuckAtHighPercent(t *testing.T) {
	vm := sim.VMSpec{Name: "cache", MemoryMiB: 1024, DirtyMiBps: 64, WorkingSetMiB: 256}
	h, _, _ := start(t, vm, 32, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{})
	h.run(2 * time.Minute)
	h.timeline()
	if !errors.Is(h.err, migrate.ErrCompletionTimeout) {
		t.Fatalf("err = %v, want ErrCompletionTimeout", h.err)
	}
	last := h.last()
	if last.Percent < 74 || last.Percent > 76 {
		t.Errorf("percent %.1f, want ≈75 (the 256 MiB working set of 1 GiB left)", last.Percent)
	}
	want := []string{"downtime 150ms", "downtime 200ms", "downtime 300ms", "downtime 400ms", "abort: completion timeout"}
	if !slices.Equal(last.Actions, want) {
		t.Errorf("actions %q, want %q", last.Actions, want)
	}
}

// blindJob is a job whose stats cannot be read (hypervisor unreachable).
type blindJob struct {
	done    chan struct{}
	aborted bool
}

func (j *blindJob) Stats() (migrate.JobStats, error) {
	return migrate.JobStats{}, errors.New("connection to hypervisor lost")
}
func (j *blindJob) Done() <-chan struct{}              { return j.done }
func (j *blindJob) Err() error                         { return errors.New("aborted") }
func (j *blindJob) Result() migrate.JobStats           { return migrate.JobStats{} }
func (j *blindJob) Abort() error                       { j.aborted = true; close(j.done); return nil }
func (j *blindJob) StartPostCopy() error               { return nil }
func (j *blindJob) SetMaxDowntime(time.Duration) error { return nil }
func (j *blindJob) SetBandwidth(uint64) error          { return nil }
func (j *blindJob) InterruptPostCopy() error           { return nil }
func (j *blindJob) Suspend() error                     { return nil }

func TestTimeoutsRunWithoutStats(t *testing.T) {
	clock := sim.NewManualClock()
	job := &blindJob{done: make(chan struct{})}
	subscribed := make(chan struct{})
	cfg := migrate.MonitorConfig{VM: "v", Clock: clock.Now, ProgressTimeout: time.Hour, CompletionPerGiB: 10 * time.Second,
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			defer close(subscribed)
			return clock.NewTicker(d)
		}}
	res := make(chan error, 1)
	go func() {
		_, err := migrate.Watch(context.Background(), job, migrate.Policy{}, cfg, nil)
		res <- err
	}()
	<-subscribed
	for i := 0; i < 100; i++ { // 50s simulated, far past the 10s floor
		clock.Advance(interval)
		select {
		case err := <-res:
			if !errors.Is(err, migrate.ErrCompletionTimeout) || !job.aborted {
				t.Errorf("err = %v aborted=%v, want ErrCompletionTimeout and an abort", err, job.aborted)
			}
			return
		default:
		}
	}
	waitFor(t, "Watch to give up on a job it cannot sample", 5*time.Second, func() bool { return len(res) > 0 })
	if err := <-res; !errors.Is(err, migrate.ErrCompletionTimeout) {
		t.Errorf("err = %v, want ErrCompletionTimeout", err)
	}
}

// zeroFirstJob reports zeros for its first samples, as libvirt's job does
// before its first pass begins, then a steadily falling remainder.
type zeroFirstJob struct {
	blindJob
	n int
}

func (j *zeroFirstJob) Stats() (migrate.JobStats, error) {
	j.n++
	if j.n <= 3 {
		return migrate.JobStats{}, nil
	}
	rem := uint64(max(0, 200-j.n)) << 20
	return migrate.JobStats{DataTotal: 256 << 20, DataRemaining: rem, MemIteration: 1 + j.n/10, Elapsed: time.Duration(j.n) * interval}, nil
}

// TestZeroSamplesBeforeTheJobAreNoBaseline: samples taken before the job
// moved any data set no low-water mark, so a progressing job never stalls.
func TestZeroSamplesBeforeTheJobAreNoBaseline(t *testing.T) {
	clock := sim.NewManualClock()
	j := &zeroFirstJob{blindJob: blindJob{done: make(chan struct{})}}
	p, _ := migrate.PolicyByName(migrate.PolicyMinimalDowntime)
	var mu sync.Mutex
	var last fsm.Progress
	n := 0
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = migrate.Watch(context.Background(), j, p, migrate.MonitorConfig{VM: "z", Interval: interval, Clock: clock.Now,
			NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
				c, stop := clock.NewTicker(d)
				close(ready)
				return c, stop
			}}, func(pr fsm.Progress) { mu.Lock(); last, n = pr, n+1; mu.Unlock() })
	}()
	<-ready
	for i := 1; i <= 60; i++ {
		clock.Advance(interval)
		waitFor(t, "a sample", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return n >= i })
	}
	mu.Lock()
	acts := last.Actions
	mu.Unlock()
	if len(acts) != 0 {
		t.Errorf("a job whose remainder fell steadily took actions %q", acts)
	}
	_ = j.Abort()
	<-done
}

// scriptedJob reports whatever stats the test set last.
type scriptedJob struct {
	endingJob
	mu    sync.Mutex
	st    migrate.JobStats
	calls int
}

func (j *scriptedJob) stats() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.calls
}

func (j *scriptedJob) set(st migrate.JobStats) {
	j.mu.Lock()
	j.st = st
	j.mu.Unlock()
}

func (j *scriptedJob) Stats() (migrate.JobStats, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls++
	return j.st, nil
}

// watchWithProbe runs Watch on job under pol with samples every interval
// and a 100 ms end probe, on clock, until the test ends. count returns the
// tickers made so far and the reports sent; report(i) is the i-th report.
func watchWithProbe(t *testing.T, clock *sim.Clock, job *scriptedJob, pol migrate.Policy) (count func() (tickers, reports int), report func(i int) fsm.Progress) {
	var mu sync.Mutex
	tickers := 0
	var reports []fsm.Progress
	cfg := migrate.MonitorConfig{VM: "v", Interval: interval, EndProbe: 100 * time.Millisecond, Clock: clock.Now,
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			// counted once the clock holds it: a test that advances
			// the clock once it sees the count must not miss the tick
			c, stop := clock.NewTicker(d)
			mu.Lock()
			tickers++
			mu.Unlock()
			return c, stop
		}}
	go func() {
		_, _ = migrate.Watch(context.Background(), job, pol, cfg, func(p fsm.Progress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { close(job.done) })
	count = func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return tickers, len(reports)
	}
	report = func(i int) fsm.Progress {
		mu.Lock()
		defer mu.Unlock()
		return reports[i]
	}
	return count, report
}

// TestEndProbeReportsAllSentAtOnce: a sample that predicts the transfer
// to end before the next one starts the end probe; the probe that finds
// nothing left to send is reported at once, 100 ms later rather than at
// the next 500 ms sample, and the probe stops; probes that find data left
// are not reported.
func TestEndProbeReportsAllSentAtOnce(t *testing.T) {
	clock := sim.NewManualClock()
	job := &scriptedJob{endingJob: endingJob{done: make(chan struct{})}}
	job.set(migrate.JobStats{DataTotal: 256 << 20, DataProcessed: 100 << 20, DataRemaining: 100 << 20, MemBps: 32 << 20, MemIteration: 1})
	count, report := watchWithProbe(t, clock, job, migrate.Policy{})
	waitFor(t, "the sample ticker", 5*time.Second, func() bool { k, _ := count(); return k == 1 })
	clock.Advance(interval) // 100 MiB left at 32 MiB/s: not ending
	waitFor(t, "sample 1", 5*time.Second, func() bool { _, n := count(); return n == 1 })
	job.set(migrate.JobStats{DataTotal: 256 << 20, DataProcessed: 250 << 20, DataRemaining: 6 << 20, MemBps: 32 << 20, MemIteration: 1})
	clock.Advance(interval) // 6 MiB left: ends in 190 ms, before the next sample
	waitFor(t, "sample 2 and the probe", 5*time.Second, func() bool { k, n := count(); return n == 2 && k == 2 })
	calls := job.stats()
	clock.Advance(100 * time.Millisecond) // a probe finds data left: not reported
	waitFor(t, "the first probe", 5*time.Second, func() bool { return job.stats() > calls })
	job.set(migrate.JobStats{DataTotal: 256 << 20, DataProcessed: 256 << 20, MemBps: 32 << 20, MemIteration: 1})
	clock.Advance(100 * time.Millisecond) // the next finds all sent
	waitFor(t, "the all-sent report", 5*time.Second, func() bool { _, n := count(); return n == 3 })
	got := report(2)
	if got.RemainingBytes != 0 || got.ProcessedBytes != 256<<20 {
		t.Fatalf("report 3 %+v, want all sent", got)
	}
	if _, n := count(); n != 3 {
		t.Fatalf("%d reports, want 3 (a probe with data left is not reported)", n)
	}
}

// TestEndProbeReportsALastPassNearItsEnd: QEMU completes a pre-copy when
// what is left fits in the allowed downtime, so a probe seldom finds
// exactly nothing left. A later pass is reported sent once what is left
// is within 300 ms at its rate (fsm.TransferSent), and the probe starts
// for a pass predicted to end within a sample and those 300 ms; a probe
// with more left is not reported.
func TestEndProbeReportsALastPassNearItsEnd(t *testing.T) {
	clock := sim.NewManualClock()
	job := &scriptedJob{endingJob: endingJob{done: make(chan struct{})}}
	pass2 := func(left uint64) migrate.JobStats {
		return migrate.JobStats{DataTotal: 256 << 20, DataProcessed: 200 << 20, DataRemaining: left << 20, MemBps: 32 << 20, MemIteration: 2}
	}
	job.set(pass2(40)) // 1.25 s at 32 MiB/s: not ending
	count, report := watchWithProbe(t, clock, job, migrate.Policy{InitialDowntime: 100 * time.Millisecond})
	waitFor(t, "the sample ticker", 5*time.Second, func() bool { k, _ := count(); return k == 1 })
	clock.Advance(interval)
	waitFor(t, "sample 1", 5*time.Second, func() bool { k, n := count(); return n == 1 && k == 1 })
	first := report(0)
	if fsm.TransferSent(first) {
		t.Fatalf("sample 1 %+v counts as sent", first)
	}
	job.set(pass2(20)) // 625 ms: past the next sample, within it and 300 ms
	clock.Advance(interval)
	waitFor(t, "sample 2 and the probe", 5*time.Second, func() bool { k, n := count(); return n == 2 && k == 2 })
	job.set(pass2(12)) // 375 ms left: more than 300 ms' worth
	calls := job.stats()
	clock.Advance(100 * time.Millisecond)
	waitFor(t, "the first probe", 5*time.Second, func() bool { return job.stats() > calls })
	job.set(pass2(8)) // 250 ms left: sent
	clock.Advance(100 * time.Millisecond)
	waitFor(t, "the sent report", 5*time.Second, func() bool { _, n := count(); return n == 3 })
	got := report(2)
	if got.RemainingBytes != 8<<20 || !fsm.TransferSent(got) {
		t.Fatalf("report 3 %+v, want the probe with 8 MiB left, sent", got)
	}
}
