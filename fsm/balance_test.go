package fsm

import (
	"errors"
	"strings"
	"testing"
)

// TestBalanceSettings: a cluster's balancing fields are checked before
// they enter the log, their zero values mean the defaults, the cluster.set
// event names them when balancing is on, and a BalanceNote only writes
// an event.
func TestBalanceSettings(t *testing.T) {
	f := newFSM(t)
	cl := DefaultCluster("c1")
	cl.Balance = BalanceMemory
	cl.BalanceThreshold = 15
	must(t, f, CmdSetCluster, SetCluster{Cluster: cl, At: t0})
	mode, threshold, hold, budget := f.State().Cluster("c1").BalanceSettings()
	if mode != BalanceMemory || threshold != 15 || hold.Seconds() != DefaultBalanceHoldSeconds || budget != DefaultBalanceBudget {
		t.Fatalf("settings = %s %d %s %d", mode, threshold, hold, budget)
	}
	evs, _ := f.Events(EventQuery{})
	if last := evs[len(evs)-1]; !strings.Contains(last.Message, "balance memory within 15 points, hold 1h0m0s, at most 20 moves an hour") {
		t.Fatalf("cluster.set event = %q", last.Message)
	}
	if _, _, _, b := DefaultCluster("c1").BalanceSettings(); b != DefaultBalanceBudget {
		t.Fatalf("default budget %d", b)
	}
	for _, bad := range []func(*Cluster){
		func(c *Cluster) { c.Balance = "evenly" },
		func(c *Cluster) { c.BalanceThreshold = 101 },
		func(c *Cluster) { c.BalanceThreshold = -1 },
		func(c *Cluster) { c.BalanceHoldSeconds = -5 },
		func(c *Cluster) { c.BalanceBudget = -1 },
	} {
		c := DefaultCluster("c1")
		bad(&c)
		data, err := Encode(CmdSetCluster, SetCluster{Cluster: c, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("cluster %+v: Validate = %v, want malformed", c, err)
		}
	}
	before := f.State().Seq
	must(t, f, CmdBalanceNote, BalanceNote{Cluster: "c1", Message: "spread 30 points: queued vm1 to h2", At: t0, Actor: "balance"})
	evs, _ = f.Events(EventQuery{})
	if last := evs[len(evs)-1]; last.Kind != EventBalance || last.Message != "cluster c1: spread 30 points: queued vm1 to h2" {
		t.Fatalf("balance event = %+v", last)
	}
	if f.State().Seq != before {
		t.Fatal("a balance note changed the migrations")
	}
}

// A drain started with its plan's prediction records, when done, how long
// it took against it; a prediction that is not a time is refused.
func TestDrainRecordsItsPredictionError(t *testing.T) {
	f := newFSM(t)
	must(t, f, CmdSetCluster, SetCluster{Cluster: DefaultCluster("c1"), At: t0})
	for _, h := range []string{"h1", "h2"} {
		must(t, f, CmdUpsertHost, UpsertHost{Facts: HostFacts{Name: h, Cluster: "c1", Arch: "x86_64", MemTotalMiB: 16384,
			MemFreeMiB: 16384, CPUs: 8, CPUsFree: 8}, At: t0})
	}
	must(t, f, CmdStartDrain, StartDrain{Host: "h2", Reason: "maintenance", At: t0, PredictedSeconds: 8})
	d := f.State().Drains["h2"]
	if d.State != DrainDone || d.PredictedSeconds != 8 {
		t.Fatalf("drain of an empty host: %+v", d)
	}
	// Done at once: 0 s against 8 predicted.
	if d.ErrorPercent != -100 {
		t.Fatalf("error %v%%, want -100%%", d.ErrorPercent)
	}
	evs, _ := f.Events(EventQuery{})
	if last := evs[len(evs)-1]; !strings.Contains(last.Message, "took 0.0s, predicted 8.0s (error -100.0%)") {
		t.Fatalf("drain.done event = %q", last.Message)
	}
	for _, bad := range []float64{-1, 2e7} {
		data, err := Encode(CmdStartDrain, StartDrain{Host: "h1", Reason: "x", At: t0, PredictedSeconds: bad})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("predicted %v: Validate = %v", bad, err)
		}
	}
}
