package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/shutdown/shutdowntest"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// The lab has no systemd and no system bus. These tests give one lab
// host's meshd a private dbus-daemon with a fake logind and systemd job
// queue (shutdowntest, what the unit and sim tests use) through
// DBUS_SYSTEM_BUS_ADDRESS, as its system bus: meshd takes its delay
// inhibitor there at start, and the test plays logind's part of a system
// shutdown (PrepareForShutdown(true)) while the host runs a real guest.
// The bus listens on a path socket in the test's temp dir, which the
// lab host's mount namespace sees too.

// busMeshd is a lab host's meshd running on a private system bus.
type busMeshd struct {
	h    *lab.Host
	fake *shutdowntest.Logind
	inh  *shutdowntest.Inhibitor // the delay inhibitor meshd took at start
	log  int64                   // meshd's log size before this start: its lines are after
}

// stopMeshd stops h's meshd with SIGTERM (a restart: outside a shutdown
// its guests stay) and waits until it is gone; a meshd already gone is fine.
func (m *mesh) stopMeshd(t *testing.T, h *lab.Host) {
	t.Helper()
	p := m.procs[h.Name]
	if p == nil {
		return
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGTERM meshd on %s: %v", h.Name, err)
	}
	if err := testcluster.Poll(60*time.Second, 100*time.Millisecond, func() bool { return exited(p) }); err != nil {
		t.Fatalf("meshd on %s still runs 60s after SIGTERM", h.Name)
	}
}

func exited(p *os.Process) bool { return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone) }

// restoreMeshd leaves h's meshd as the other tests expect it: started
// plainly (no system bus), joined, every host Up.
func (m *mesh) restoreMeshd(t *testing.T, h, join *lab.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m.stopMeshd(t, h)
	if err := m.startMeshd(ctx, h, "--join", join.MgmtIP+":7946"); err != nil {
		t.Errorf("restore meshd on %s for the tests that follow: %v", h.Name, err)
		return
	}
	if err := m.waitMesh(ctx, len(m.lab.Hosts)); err != nil {
		t.Errorf("restore meshd on %s for the tests that follow: %v", h.Name, err)
	}
}

// startOnBus restarts h's meshd (SIGTERM: its guests stay) on a fresh
// private bus with the given shutdown policy, waits for the mesh, and
// checks that meshd took logind's delay inhibitor for shutdowns.
func (m *mesh) startOnBus(t *testing.T, ctx context.Context, h, join *lab.Host, policy string) *busMeshd {
	t.Helper()
	bus := shutdowntest.StartBus(t)
	b := &busMeshd{h: h, fake: shutdowntest.NewLogind(t, bus)}
	m.stopMeshd(t, h)
	if st, err := os.Stat(m.meshdLog(h)); err == nil {
		b.log = st.Size()
	}
	if err := m.startMeshdEnv(ctx, h, []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus.Addr},
		"--join", join.MgmtIP+":7946", "--shutdown-policy", policy); err != nil {
		t.Fatal(err)
	}
	if err := m.waitMesh(ctx, len(m.lab.Hosts)); err != nil {
		t.Fatalf("meshd on %s restarted on a private system bus: %v", h.Name, err)
	}
	b.inh = b.fake.WaitInhibitor(t, 1, 30*time.Second)
	if b.inh.What != "shutdown" || b.inh.Mode != "delay" || b.inh.Who != "meshd" {
		t.Fatalf("meshd on %s took inhibitor what=%q mode=%q who=%q, want shutdown, delay, meshd", h.Name, b.inh.What, b.inh.Mode, b.inh.Who)
	}
	// meshd logs it once it read logind's InhibitDelayMaxUSec, after Inhibit.
	var line string
	if err := testcluster.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		line = lineWith(m.logSince(t, b), "logind delay inhibitor taken")
		return line != ""
	}); err != nil || !strings.Contains(line, "shutdown_policy="+policy) {
		t.Fatalf("meshd on %s did not log the inhibitor taken with shutdown_policy=%s (line %q):\n%s", h.Name, policy, line, m.logSince(t, b))
	}
	t.Logf("meshd on %s: %s", h.Name, line)
	return b
}

// logSince is what h's meshd logged since b's start.
func (m *mesh) logSince(t *testing.T, b *busMeshd) string {
	t.Helper()
	all, err := os.ReadFile(m.meshdLog(b.h))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(all)) < b.log {
		return ""
	}
	return string(all[b.log:])
}

// lineWith is the first line of log holding s, "" if none.
func lineWith(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// waitReleased waits until every copy of the inhibitor's fd is closed, as
// logind sees it, and says when.
func waitReleased(t *testing.T, inh *shutdowntest.Inhibitor, within time.Duration, what string) time.Time {
	t.Helper()
	select {
	case <-inh.Released():
		return time.Now()
	case <-time.After(within):
		t.Fatalf("logind's inhibitor not released within %s %s", within, what)
	}
	return time.Time{}
}

// TestShutdownSignalMigrateDrainsBeforeExit (issue 11): under the migrate
// policy, logind's PrepareForShutdown(true) makes meshd on h2 drain h2 (its
// guest moves live to h1, the other host of its cluster), leave the mesh,
// release the inhibitor only after the drain, and exit. A TCG guest that
// dies right after its move (QEMU 7.2 software emulation, see lab.md) is
// reported in a WARNING and the scenario runs once more on a fresh guest.
func TestShutdownSignalMigrateDrainsBeforeExit(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	h, other := m.lab.Hosts[1], m.lab.Hosts[0]
	t.Cleanup(func() { m.restoreMeshd(t, h, other) })
	for attempt := 1; ; attempt++ {
		crashed := m.shutdownDrainOnce(t, ctx, h, other, fmt.Sprintf("shutdrain%d", attempt))
		if crashed == nil {
			return
		}
		if attempt == 2 {
			t.Fatalf("the guest died right after its move in both attempts: %v", crashed)
		}
		t.Logf("WARNING: %v: a TCG guest dying right after a live migration is QEMU 7.2's software emulation (lab.md), "+
			"not the drain; running the scenario again on a fresh guest", crashed)
	}
}

// shutdownDrainOnce runs the scenario once on a guest called name. It
// returns an error only when the guest died after its move (a TCG crash
// or hang); every other failure fails the test.
func (m *mesh) shutdownDrainOnce(t *testing.T, ctx context.Context, h, other *lab.Host, name string) error {
	b := m.startOnBus(t, ctx, h, other, "migrate")
	g := m.bootGuest(t, ctx, h, lab.GuestSpec{Name: name, MemoryMiB: 256, Disk: lab.DiskShared})
	for _, v := range m.vms(t, ctx) {
		if v.Host == h.Name && v.Name != name {
			t.Fatalf("%s also runs %s, left by another test: the drain would move it too", h.Name, v.Name)
		}
	}
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)
	p := m.procs[h.Name]

	start := time.Now()
	if err := b.fake.PrepareForShutdown(true); err != nil {
		t.Fatalf("emit PrepareForShutdown: %v", err)
	}
	released := waitReleased(t, b.inh, 90*time.Second, "after PrepareForShutdown(true): the drain did not end")
	if err := testcluster.Poll(30*time.Second, 50*time.Millisecond, func() bool { return exited(p) }); err != nil {
		t.Fatalf("meshd on %s still runs 30s after it released the inhibitor", h.Name)
	}
	gone := time.Now()

	var mg *api.Migration
	for _, x := range m.migrations(t, ctx) {
		if x.VM == name && x.Drain == h.Name {
			mg = &x
		}
	}
	if mg == nil {
		t.Fatalf("meshctl migrations lists no drain migration of %s from %s", name, h.Name)
	}
	if mg.State != api.MigSucceeded || mg.Source != h.Name || mg.Dest != other.Name {
		t.Fatalf("drain migration %s of %s: %s %s → %s (%s), want Succeeded %s → %s", mg.ID, name, mg.State, mg.Source, mg.Dest, mg.Reason, h.Name, other.Name)
	}
	if released.Before(mg.EndedAt) {
		t.Errorf("the inhibitor was released at %s, before the drain's migration ended at %s",
			released.Format("15:04:05.000"), mg.EndedAt.Local().Format("15:04:05.000"))
	}
	t.Logf("PrepareForShutdown → %s drained %s to %s in %s (migration %s, downtime %d ms); inhibitor released %s after the migration ended, "+
		"%s after the signal; meshd gone %s after the release",
		h.Name, name, other.Name, mg.EndedAt.Sub(start).Round(100*time.Millisecond), mg.EndedAt.Sub(mg.StartedAt).Round(100*time.Millisecond),
		mg.DowntimeMs, released.Sub(mg.EndedAt).Round(10*time.Millisecond), released.Sub(start).Round(100*time.Millisecond),
		gone.Sub(released).Round(10*time.Millisecond))

	// A guest that died after the move: the emulator's, reported by the caller.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if last, _ := g.LastCounter(); g.WaitCounter(wctx, last+3) != nil {
		logConsole(t, g.ConsoleLog)
		return fmt.Errorf("guest %s printed no new counter within 30s after it moved %s → %s", name, h.Name, other.Name)
	}

	m.waitVM(t, ctx, name, other.Name)
	m.assertRunsOnlyOn(t, ctx, name, other.Name)
	w.assertNoRestart(t, start)
	if err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool { return m.host(t, ctx, h.Name).State == api.HostLeft }); err != nil {
		t.Errorf("meshctl hosts: %s is %s after it drained for a shutdown, want %s", h.Name, m.host(t, ctx, h.Name).State, api.HostLeft)
	}
	l := m.logSince(t, b)
	for _, want := range []string{"shutdown announced by logind (PrepareForShutdown)", "action=migrate", "shutdown: drained and left"} {
		if !strings.Contains(l, want) {
			t.Errorf("meshd's log on %s lacks %q", h.Name, want)
		}
	}
	if i, j := strings.Index(l, "shutdown: drained and left"), strings.Index(l, "shutdown: logind inhibitor released"); j >= 0 && j < i {
		t.Errorf("meshd on %s logged the inhibitor released before the drain ended", h.Name)
	}
	return nil
}

// TestShutdownSignalFreezeKeepsGuests (issue 11): under the freeze policy
// the same PrepareForShutdown(true) moves nothing: h2 is marked frozen
// (Maintenance, so nothing is placed on it), keeps its guest running (same
// domain, its counter runs on), releases the inhibitor and stays in the
// mesh; systemd's SIGTERM of the shutdown then stops meshd with the guest
// still there, and meshd started again thaws h2 to Up.
func TestShutdownSignalFreezeKeepsGuests(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h, other := m.lab.Hosts[1], m.lab.Hosts[0]
	restored := false
	t.Cleanup(func() {
		if !restored {
			m.restoreMeshd(t, h, other)
		}
	})
	b := m.startOnBus(t, ctx, h, other, "freeze")
	const name = "shutfreeze"
	g := m.bootGuest(t, ctx, h, lab.GuestSpec{Name: name, MemoryMiB: 128})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)
	id := domID(t, ctx, h, name)
	p := m.procs[h.Name]

	start := time.Now()
	if err := b.fake.PrepareForShutdown(true); err != nil {
		t.Fatalf("emit PrepareForShutdown: %v", err)
	}
	released := waitReleased(t, b.inh, 60*time.Second, "after PrepareForShutdown(true) under freeze")
	hv := m.host(t, ctx, h.Name)
	if hv.State != api.HostMaintenance || !strings.HasPrefix(hv.StateReason, node.FrozenReason) {
		t.Fatalf("meshctl hosts: %s is %s (%q) after the freeze, want %s, %q…", h.Name, hv.State, hv.StateReason, api.HostMaintenance, node.FrozenReason)
	}
	if exited(p) {
		t.Fatalf("meshd on %s exited on a freeze: it stays until systemd stops it", h.Name)
	}
	t.Logf("PrepareForShutdown → %s frozen, inhibitor released %s after the signal", h.Name, released.Sub(start).Round(10*time.Millisecond))

	// systemd's shutdown transaction stops meshd.
	b.fake.SetJobs(shutdown.Job{Unit: "poweroff.target", Type: "start"}, shutdown.Job{Unit: "meshd.service", Type: "stop"})
	m.stopMeshd(t, h)
	m.waitVM(t, ctx, name, h.Name)
	m.assertRunsOnlyOn(t, ctx, name, h.Name)
	if got := domID(t, ctx, h, name); got != id {
		t.Errorf("%s's domain ID on %s was %s, is %s: the guest was restarted", name, h.Name, id, got)
	}
	for _, mg := range m.migrations(t, ctx) {
		if mg.VM == name {
			t.Errorf("a migration of %s exists under the freeze policy: %s %s → %s %s", name, mg.ID, mg.Source, mg.Dest, mg.State)
		}
	}
	l := m.logSince(t, b)
	for _, want := range []string{"action=freeze", "shutdown: host frozen", "stopping on terminated in a system shutdown: host frozen"} {
		if !strings.Contains(l, want) {
			t.Errorf("meshd's log on %s lacks %q", h.Name, want)
		}
	}
	if strings.Contains(l, "left the mesh") {
		t.Errorf("meshd on %s left the mesh under the freeze policy", h.Name)
	}
	w.assertNoRestart(t, start)

	// meshd starts again (the reboot's end): h2 thaws to Up.
	m.restoreMeshd(t, h, other)
	restored = true
	if hv := m.host(t, ctx, h.Name); hv.State != api.HostUp {
		t.Errorf("%s is %s after meshd started again, want %s (thawed)", h.Name, hv.State, api.HostUp)
	}
}
