package node

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// capJob records the caps set on it; nothing else of it is called.
type capJob struct {
	migrate.Job
	caps []uint64
}

func (j *capJob) SetBandwidth(mib uint64) error { j.caps = append(j.caps, mib); return nil }

// TestHandedCapOutlivesTheStaleStateOnly: a cap raised by a hand-off is
// not undone by the state's cap from before it (the sample committed, the
// reshare not yet), the leader's next decision applies at once, and the
// stale cap applies again once handOffHold passed without a reshare.
func TestHandedCapOutlivesTheStaleStateOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	fj := &capJob{}
	j := &runningJob{}
	j.attach(fj, 1)
	if !j.handTo(15, 1, log) {
		t.Fatal("hand-off from 1 to 15 MiB/s: no change")
	}
	j.setBandwidth(1, log) // an executor pass on the state before the reshare
	j.setBandwidth(15, log)
	if want := []uint64{15}; !slices.Equal(fj.caps, want) {
		t.Fatalf("caps set %v, want %v (the stale 1 skipped, the reshare's 15 already in force)", fj.caps, want)
	}
	j.setBandwidth(1, log) // the hold ended with the reshare: 1 is a decision now
	if want := []uint64{15, 1}; !slices.Equal(fj.caps, want) {
		t.Fatalf("caps set %v, want %v", fj.caps, want)
	}
	j.handTo(15, 1, log)
	j.setBandwidth(8, log) // the leader decided otherwise (a grant)
	if want := []uint64{15, 1, 15, 8}; !slices.Equal(fj.caps, want) {
		t.Fatalf("caps set %v, want %v", fj.caps, want)
	}
	j.handTo(15, 8, log)
	j.bwMu.Lock()
	j.handedAt = time.Now().Add(-handOffHold)
	j.bwMu.Unlock()
	j.setBandwidth(8, log) // no reshare came within the hold
	if want := []uint64{15, 1, 15, 8, 15, 8}; !slices.Equal(fj.caps, want) {
		t.Fatalf("caps set %v, want %v", fj.caps, want)
	}
	if (&runningJob{}).handTo(15, 1, log) {
		t.Error("hand-off to a job not started yet: changed")
	}
}
