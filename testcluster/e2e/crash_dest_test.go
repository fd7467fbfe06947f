package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestDestinationMeshdKilledMidMigration (issue 10): meshd on the
// DESTINATION is SIGKILLed at about 30% of a pre-copy and restarted.
// libvirt's peer-to-peer job belongs to the two libvirtds, not to the
// destination's meshd, and the source's meshd watches it: the migration
// ends once, Succeeded on its first attempt (no second start, no retry),
// the guest's counter never restarts, the guest runs on exactly one host
// and meshctl says which (virsh on every host agrees), and no migration
// holds a slot afterwards.
func TestDestinationMeshdKilledMidMigration(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// meshctl talks to h1, the source, whose API answers throughout; h3 is
	// in another cluster
	src, dst := m.lab.Hosts[0], m.lab.Hosts[1]
	const vm = "crashdst"
	g := m.bootGuest(t, ctx, src, lab.GuestSpec{Name: vm, MemoryMiB: 256, FillMiB: 160, Disk: lab.DiskShared})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)

	start := time.Now()
	if r := m.ctl(ctx, "migrate", vm, "--to", dst.Name, "--bandwidth", "8"); r.code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	id := lastMigrationOf(t, ctx, m, vm).ID
	var cur api.Migration
	const at = 256 << 20 * 3 / 10
	if err := testcluster.Poll(2*time.Minute, 200*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, id)
		return cur.State.Final() || cur.Progress.ProcessedBytes >= at
	}); err != nil || cur.State.Final() {
		t.Fatalf("%s never sent 30%% of the guest while running: %v (last %s, %.1f MiB sent)", id, err, cur.State, mib(cur.Progress.ProcessedBytes))
	}
	if err := m.procs[dst.Name].Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL meshd on %s: %v", dst.Name, err)
	}
	killed := time.Now()
	t.Logf("meshd on the destination %s killed with %.1f MiB of %s sent", dst.Name, mib(cur.Progress.ProcessedBytes), id)
	if err := m.startMeshd(ctx, dst, "--join", src.MgmtIP+":7946"); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(3*time.Minute, 250*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, id)
		return cur.State.Final()
	}); err != nil {
		t.Fatalf("%s did not end after the destination's restart: %v (last %s: %s)", id, err, cur.State, cur.Unsettled)
	}
	logProgress(t, cur)
	t.Logf("%s ended %s %s after the kill", id, cur.State, time.Since(killed).Round(time.Millisecond))
	if cur.State != api.MigSucceeded || cur.Attempt != 1 {
		t.Fatalf("%s: %s on attempt %d (%s); want Succeeded on attempt 1", id, cur.State, cur.Attempt, cur.Reason)
	}
	m.waitVM(t, ctx, vm, dst.Name)
	m.assertRunsOnlyOn(t, ctx, vm, dst.Name)
	w.assertNoRestart(t, start)

	// settled once: one end in the event log, no retry
	var evs []api.Event
	if err := m.ctlJSON(ctx, &evs, "events", "--vm", vm, "-n", "500"); err != nil {
		t.Fatal(err)
	}
	ends := 0
	for _, e := range evs {
		if e.Migration != id {
			continue
		}
		switch e.Kind {
		case fsm.EventMigrationSucceded, fsm.EventMigrationFailed, fsm.EventMigrationCancel, fsm.EventMigrationRetried:
			ends++
			t.Logf("event: %s %s", e.Kind, e.Message)
		}
	}
	if ends != 1 {
		t.Errorf("%s ended %d times in the event log, want once", id, ends)
	}
	// slots released: nothing Running or queued
	var st api.Status
	if err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool {
		return m.ctlJSON(ctx, &st, "status") == nil && st.Running == 0 && st.Queued == 0
	}); err != nil {
		t.Errorf("after %s: %d migrations Running, %d queued; want none holding a slot", id, st.Running, st.Queued)
	}
	if err := m.waitMesh(ctx, len(m.lab.Hosts)); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
