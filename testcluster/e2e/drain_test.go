package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestDrainMovesGuestsLive: meshctl drain --wait moves every guest of a host
// away live (each counter runs on), the host ends in Maintenance, and
// meshctl activate brings it back Up.
func TestDrainMovesGuestsLive(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h1 := m.lab.Hosts[0]
	var names []string
	watches := map[string]*counterWatch{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("drain%d", i)
		g := m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: name, MemoryMiB: 256, FillMiB: 64})
		watches[name] = watchCounters(t, g)
		names = append(names, name)
	}
	for _, v := range m.vms(t, ctx) {
		if v.Host == h1.Name && !contains(names, v.Name) {
			t.Fatalf("h1 also runs %s, left by another test: the drain would move it too", v.Name)
		}
	}
	for _, w := range watches {
		w.waitMore(t, 2, 30*time.Second)
	}

	// Whatever happens, leave h1 Up for the tests that follow.
	t.Cleanup(func() {
		if h := m.host(t, context.Background(), h1.Name); h.State != api.HostUp {
			_ = m.ctl(context.Background(), "drain", h1.Name, "--cancel")
			_ = m.ctl(context.Background(), "activate", h1.Name)
		}
	})
	start := time.Now()
	r := m.ctl(ctx, "drain", h1.Name, "--wait")
	t.Logf("%s", r)
	if r.code != 0 {
		t.Fatalf("drain failed: %s", r)
	}
	if !strings.Contains(r.stdout, "h1 is in Maintenance") {
		t.Errorf("drain report does not say h1 is in Maintenance: %s", r.stdout)
	}
	if h := m.host(t, ctx, h1.Name); h.State != api.HostMaintenance {
		t.Errorf("meshctl hosts: h1 is %s after the drain, want %s", h.State, api.HostMaintenance)
	}
	downtime := map[string]time.Duration{}
	for _, mg := range m.migrations(t, ctx) {
		if mg.Drain == h1.Name && contains(names, mg.VM) {
			if mg.State != api.MigSucceeded {
				t.Errorf("drain migration %s of %s: %s %s", mg.ID, mg.VM, mg.State, mg.Reason)
			}
			downtime[mg.VM] = time.Duration(mg.DowntimeMs) * time.Millisecond
			t.Logf("%s: %s → %s in %s, downtime %d ms", mg.VM, mg.Source, mg.Dest,
				mg.EndedAt.Sub(mg.StartedAt).Round(time.Millisecond), mg.DowntimeMs)
		}
	}
	for _, name := range names {
		vms := m.vmEntries(t, ctx, name)
		if len(vms) != 1 || vms[0].Host == h1.Name {
			t.Errorf("meshctl vms: %s is %+v, want it once, off h1", name, vms)
			continue
		}
		m.assertRunsOnlyOn(t, ctx, name, vms[0].Host)
		d, ok := downtime[name]
		if !ok {
			t.Errorf("no drain migration of %s listed", name)
		}
		t.Run(name, func(t *testing.T) { watches[name].assertContinuous(t, start, d) })
	}

	r = m.ctl(ctx, "activate", h1.Name)
	if r.code != 0 {
		t.Fatalf("activate: %s", r)
	}
	if h := m.host(t, ctx, h1.Name); h.State != api.HostUp {
		t.Errorf("meshctl hosts: h1 is %s after activate, want %s", h.State, api.HostUp)
	}
}
