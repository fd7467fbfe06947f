package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// domID is the running domain's libvirt ID on h: a guest restarted (or
// moved and back) gets a new one.
func domID(t *testing.T, ctx context.Context, h *lab.Host, name string) string {
	t.Helper()
	out, err := h.Virsh(ctx, "domid", name)
	if err != nil {
		t.Fatalf("virsh domid %s on %s: %v", name, h.Name, err)
	}
	return strings.TrimSpace(out)
}

// TestSIGTERMRestartKeepsGuests (issue 11): meshd on a lab host with a
// running guest is stopped with SIGTERM, as systemctl restart does, and
// started again. There is no system bus in the lab, so meshd runs without
// logind's inhibitor and a SIGTERM is a restart: the guest keeps running
// on that host (same domain ID, its counter never restarts), the host
// never leaves the mesh and is Up again, the state still says where the
// guest is, and a migration afterwards works.
func TestSIGTERMRestartKeepsGuests(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h, other := m.lab.Hosts[1], m.lab.Hosts[0] // meshctl talks to h1: restart h2
	g := m.bootGuest(t, ctx, h, lab.GuestSpec{Name: "termkeep", MemoryMiB: 256, Disk: lab.DiskShared})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)
	id := domID(t, ctx, h, "termkeep")

	start := time.Now()
	p := m.procs[h.Name]
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM meshd on %s: %v", h.Name, err)
	}
	if err := testcluster.Poll(60*time.Second, 100*time.Millisecond, func() bool {
		return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
	}); err != nil {
		t.Fatalf("meshd on %s still runs 60s after SIGTERM", h.Name)
	}
	stopped := time.Since(start)
	log, err := os.ReadFile(m.meshdLog(h))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no logind on a system bus", "no drain, VMs stay where they are", "meshd stopped: the host's VMs keep running"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("meshd's log on %s lacks %q", h.Name, want)
		}
	}
	if strings.Contains(string(log), "left the mesh") {
		t.Errorf("meshd on %s left the mesh on SIGTERM", h.Name)
	}
	if st := m.host(t, ctx, h.Name).State; st == api.HostLeft {
		t.Fatalf("%s is %s after a SIGTERM", h.Name, st)
	}
	if !contains(domains(t, ctx, h, "--state-running"), "termkeep") {
		t.Fatalf("termkeep no longer runs on %s with meshd stopped", h.Name)
	}

	if err := m.startMeshd(ctx, h, "--join", other.MgmtIP+":7946"); err != nil {
		t.Fatal(err)
	}
	if err := m.waitMesh(ctx, len(m.lab.Hosts)); err != nil {
		t.Fatalf("after the restart of %s: %v", h.Name, err)
	}
	t.Logf("meshd on %s stopped %s after SIGTERM; the mesh had every host Up again %s after it",
		h.Name, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	m.waitVM(t, ctx, "termkeep", h.Name)
	if got := domID(t, ctx, h, "termkeep"); got != id {
		t.Errorf("termkeep's domain ID on %s was %s, is %s: the guest was restarted", h.Name, id, got)
	}
	m.assertRunsOnlyOn(t, ctx, "termkeep", h.Name)
	for _, mg := range m.migrations(t, ctx) {
		if mg.VM == "termkeep" {
			t.Errorf("a migration of termkeep exists after the restart: %s %s", mg.ID, mg.State)
		}
	}
	w.waitMore(t, 3, 30*time.Second)
	w.assertNoRestart(t, start)

	mv := m.migrateWait(t, ctx, "termkeep", "--to", other.Name)
	if mv.from != h.Name || mv.to != other.Name {
		t.Fatalf("moved %s → %s, want %s → %s", mv.from, mv.to, h.Name, other.Name)
	}
	m.waitVM(t, ctx, "termkeep", other.Name)
	m.assertRunsOnlyOn(t, ctx, "termkeep", other.Name)
	w.assertNoRestart(t, start)
}
