package e2e

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// predictionLine is the line of meshctl drain --wait's report that gives
// the plan's prediction, the time taken and the error.
var predictionLine = regexp.MustCompile(`predicted (\d+\.\d)s, took (\d+\.\d)s: error ([+-]\d+\.\d)%`)

// TestDrainRecordsItsPrediction: on real libvirt, a drain starts with its
// plan's predicted time and, once done, records the prediction's error;
// drained twice (the VMs come back with activate --return in between),
// the second plan predicts each move from the first moves' times. Both
// errors are logged: bench/RESULTS.md gives them (the goal, median
// within 15 %, is a measured figure, not a timed assertion).
func TestDrainRecordsItsPrediction(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h1 := m.lab.Hosts[0]
	var names []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("eta%d", i)
		m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: 256, FillMiB: 64})
		names = append(names, name)
	}
	for _, v := range m.vms(t, ctx) {
		if v.Host == h1.Name && !contains(names, v.Name) {
			t.Fatalf("h1 also runs %s, left by another test: the drain would move it too", v.Name)
		}
	}
	t.Cleanup(func() {
		if h := m.host(t, context.Background(), h1.Name); h.State != api.HostUp {
			_ = m.ctl(context.Background(), "drain", h1.Name, "--cancel")
			_ = m.ctl(context.Background(), "activate", h1.Name)
		}
	})
	for round := 1; round <= 2; round++ {
		plan := m.ctl(ctx, "drain", h1.Name, "--dry-run")
		t.Logf("round %d plan: %s", round, plan)
		r := m.ctl(ctx, "drain", h1.Name, "--wait")
		t.Logf("round %d: %s", round, r)
		if r.code != 0 {
			t.Fatalf("drain round %d failed: %s", round, r)
		}
		got := predictionLine.FindStringSubmatch(r.stdout)
		if got == nil {
			t.Fatalf("round %d: the drain's report gives no prediction and error:\n%s", round, r.stdout)
		}
		t.Logf("PREDICTION round %d: predicted %ss, took %ss, error %s%%", round, got[1], got[2], got[3])
		if r := m.ctl(ctx, "activate", h1.Name, "--return"); r.code != 0 {
			t.Fatalf("activate --return: %s", r)
		}
		for _, name := range names {
			m.waitVM(t, ctx, name, h1.Name)
		}
	}
}
