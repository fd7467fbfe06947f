package migrate_test

import (
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// TestReportsCarryThePassFallAndTheProbeUsesIt: a first pass whose
// remaining data falls faster than the wire carries (zero pages) reports
// that fall rate, and the end probe starts from it: 24 MiB left at
// 16 MiB/s on the wire is 1.5 s, past the next sample, but the pass fell
// 64 MiB/s on average, so it ends in 375 ms.
func TestReportsCarryThePassFallAndTheProbeUsesIt(t *testing.T) {
	clock := sim.NewManualClock()
	job := &scriptedJob{endingJob: endingJob{done: make(chan struct{})}}
	pass1 := func(ms int64, left uint64) migrate.JobStats {
		return migrate.JobStats{Elapsed: time.Duration(ms) * time.Millisecond, DataTotal: 256 << 20, DataProcessed: 100 << 20,
			DataRemaining: left << 20, MemBps: 16 << 20, MemIteration: 1}
	}
	job.set(pass1(1000, 248))
	count, report := watchWithProbe(t, clock, job, migrate.Policy{})
	waitFor(t, "the sample ticker", 5*time.Second, func() bool { k, _ := count(); return k == 1 })
	clock.Advance(interval)
	waitFor(t, "sample 1", 5*time.Second, func() bool { _, n := count(); return n == 1 })
	if f := report(0).FallBps; f != 0 {
		t.Fatalf("sample 1 reports a fall of %d B/s, want 0 (unknown after one sample)", f)
	}
	job.set(pass1(4500, 24)) // 224 MiB in 3.5 s
	clock.Advance(interval)
	waitFor(t, "sample 2", 5*time.Second, func() bool { _, n := count(); return n == 2 })
	if f := report(1).FallBps; f != 64<<20 {
		t.Fatalf("sample 2 reports a fall of %d B/s, want %d (64 MiB/s)", f, 64<<20)
	}
	waitFor(t, "the end probe", 5*time.Second, func() bool { k, _ := count(); return k == 2 })
}

// TestNoProbeAtTheWireRate: the same pass at the wire rate (every page
// data) is 1.5 s from its end: no probe before the next sample.
func TestNoProbeAtTheWireRate(t *testing.T) {
	clock := sim.NewManualClock()
	job := &scriptedJob{endingJob: endingJob{done: make(chan struct{})}}
	pass1 := func(ms int64, left uint64) migrate.JobStats {
		return migrate.JobStats{Elapsed: time.Duration(ms) * time.Millisecond, DataTotal: 256 << 20, DataProcessed: (256 - left) << 20,
			DataRemaining: left << 20, MemBps: 16 << 20, MemIteration: 1}
	}
	job.set(pass1(1000, 40))
	count, report := watchWithProbe(t, clock, job, migrate.Policy{})
	waitFor(t, "the sample ticker", 5*time.Second, func() bool { k, _ := count(); return k == 1 })
	clock.Advance(interval)
	waitFor(t, "sample 1", 5*time.Second, func() bool { _, n := count(); return n == 1 })
	job.set(pass1(1500, 32))
	clock.Advance(interval)
	waitFor(t, "sample 2", 5*time.Second, func() bool { _, n := count(); return n == 2 })
	if f := report(1).FallBps; f != 16<<20 {
		t.Fatalf("sample 2 reports a fall of %d B/s, want %d (16 MiB/s)", f, 16<<20)
	}
	job.set(pass1(2000, 24)) // 1.5 s left at 16 MiB/s, falling at 16
	clock.Advance(interval)
	waitFor(t, "sample 3", 5*time.Second, func() bool { _, n := count(); return n == 3 })
	clock.Advance(interval) // the same stats: Watch decided on sample 3's probe before it takes this one
	waitFor(t, "sample 4", 5*time.Second, func() bool { _, n := count(); return n == 4 })
	if k, _ := count(); k != 1 {
		t.Fatalf("%d tickers after a sample 1.5 s from its end at the wire rate, want 1 (no probe)", k)
	}
}
