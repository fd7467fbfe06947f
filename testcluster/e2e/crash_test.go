package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestSourceMeshdKilledMidMigrationReattaches (issue 10): meshd on the
// source is SIGKILLed at about 30% of a pre-copy and restarted. libvirt's
// peer-to-peer job runs on without it; the restarted meshd re-attaches (or
// settles the job that ended meanwhile from both hypervisors), and the
// migration ends Succeeded on its first attempt: the guest's counter never
// restarts, the guest runs on the destination only (virsh on every host),
// and meshctl agrees.
func TestSourceMeshdKilledMidMigrationReattaches(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, dst := m.lab.Hosts[1], m.lab.Hosts[0] // meshctl talks to h1: the source is h2
	g := m.bootGuest(t, ctx, src, lab.GuestSpec{Name: "crashsrc", MemoryMiB: 256, FillMiB: 160, Disk: lab.DiskShared})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)

	start := time.Now()
	if r := m.ctl(ctx, "migrate", "crashsrc", "--to", dst.Name, "--bandwidth", "8"); r.code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	id := lastMigrationOf(t, ctx, m, "crashsrc").ID
	// 30% of the guest's memory sent (the job's own percent can read high
	// before libvirt has sized the transfer)
	var cur api.Migration
	const at = 256 << 20 * 3 / 10
	if err := testcluster.Poll(2*time.Minute, 200*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, id)
		return cur.State.Final() || cur.Progress.ProcessedBytes >= at
	}); err != nil || cur.State.Final() {
		t.Fatalf("%s never sent 30%% of the guest while running: %v (last %s, %.1f MiB sent)", id, err, cur.State, mib(cur.Progress.ProcessedBytes))
	}
	if err := m.procs[src.Name].Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL meshd on %s: %v", src.Name, err)
	}
	killed := time.Now()
	t.Logf("meshd on %s killed with %.1f MiB of %s sent, %s into the job", src.Name, mib(cur.Progress.ProcessedBytes), id,
		(time.Duration(cur.Progress.ElapsedMs) * time.Millisecond).Round(time.Millisecond))
	if err := m.startMeshd(ctx, src, "--join", dst.MgmtIP+":7946"); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(3*time.Minute, 250*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, id)
		return cur.State.Final()
	}); err != nil {
		t.Fatalf("%s did not end after the restart: %v (last %s: %s)", id, err, cur.State, cur.Unsettled)
	}
	logProgress(t, cur)
	t.Logf("%s ended %s after the kill", id, time.Since(killed).Round(time.Millisecond))
	if cur.State != api.MigSucceeded || cur.Attempt != 1 {
		t.Fatalf("%s: %s on attempt %d (%s); want Succeeded on attempt 1", id, cur.State, cur.Attempt, cur.Reason)
	}
	m.waitVM(t, ctx, "crashsrc", dst.Name)
	m.assertRunsOnlyOn(t, ctx, "crashsrc", dst.Name)
	w.assertNoRestart(t, start)
	if err := m.waitMesh(ctx, len(m.lab.Hosts)); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
