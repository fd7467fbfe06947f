package sim

import (
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// waitFor polls cond until it holds or the real-time deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond) // poll interval, bounded by the deadline
	}
}

// runUntilDone advances a manual clock in steps until the job ends or limit
// of simulated time passed; it returns whether the job ended.
func runUntilDone(t *testing.T, c *Clock, j migrate.Job, limit time.Duration) bool {
	t.Helper()
	for elapsed := time.Duration(0); elapsed < limit; elapsed += 100 * time.Millisecond {
		select {
		case <-j.Done():
			return true
		default:
		}
		c.Advance(100 * time.Millisecond)
		// a switch-over commits in a goroutine: let it land before moving on
		waitFor(t, "switch-over to settle", 5*time.Second, func() bool { return !switching(j) })
	}
	select {
	case <-j.Done():
		return true
	default:
		return false
	}
}

// switching reports whether a sim job is handing over to its destination.
func switching(j migrate.Job) bool {
	sj := j.(*job)
	sj.mu.Lock()
	defer sj.mu.Unlock()
	return sj.phase == phaseSwitching
}

// pair returns a registry on a manual clock with two hosts of 16 GiB.
func pair(t *testing.T) (*Registry, *Clock, *Host, *Host) {
	t.Helper()
	c := NewManualClock()
	r := NewRegistry(Config{Clock: c})
	t.Cleanup(r.Close)
	a, err := r.AddHost(HostSpec{Name: "a", CPUModel: "Skylake", MemTotalMiB: 16384, CPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.AddHost(HostSpec{Name: "b", CPUModel: "Skylake", MemTotalMiB: 16384, CPUs: 8})
	if err != nil {
		t.Fatal(err)
	}
	return r, c, a, b
}

const MiB = 1 << 20
