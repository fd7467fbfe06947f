package testcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// TestPauseCommittedBeforeItIsMade (issue 10): suspend-workload's pause of
// the guest is in the replicated state before the hypervisor makes it, so
// a source whose meshd dies right after the pause, before its next
// progress report, and stays down leaves the leader the proof it needs: the
// leader settles the failed migration and resumes the guest on its source.
// Before, the pause reached the state with the next sample only; a meshd
// that died in between left the guest paused for good (the leader rightly
// ends no pause it cannot explain).
func TestPauseCommittedBeforeItIsMade(t *testing.T) {
	c := New(t, Options{Hosts: 4, TimeScale: 40})
	src, dst := c.pair(t)
	srcName := HostName(src)
	sh, _ := c.Reg.Host(srcName)
	dh, _ := c.Reg.Host(HostName(dst))
	const name = "paused-early"
	spec := simVM(name, 4096)
	spec.DirtyMiBps = 60
	if err := sh.Define(spec); err != nil {
		t.Fatal(err)
	}
	c.waitVMs(1)
	id, err := c.Migrate(c.Leader(10*time.Second).APIAddr(), api.MigrateRequest{VM: name, To: HostName(dst), BandwidthMiB: 10,
		Policy: migrate.PolicySuspendWorkload})
	if err != nil {
		t.Fatal(err)
	}
	// At the first sight of the pause on the hypervisor, the leader's
	// state must already hold it; the source dies at that very moment.
	var recorded int64
	c.WaitFor(90*time.Second, name+" paused by its policy", func() bool {
		st, err := sh.Status(context.Background(), migrate.DomainRef{Name: name})
		if err != nil || st.State != fsm.VMPaused || st.Reason != migrate.ReasonUser {
			return false
		}
		c.Crash(src)
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
			if m := s.Migrations[id]; m != nil {
				recorded = m.Progress.SuspendedAtMs
			}
		})
		return true
	})
	if recorded <= 0 {
		t.Errorf("%s: the guest was paused on %s before the state recorded the pause", id, srcName)
	}
	dh.BreakMigrations() // the job fails while the source's meshd is down
	var m fsm.Migration
	c.WaitFor(60*time.Second, id+" settled by the leader", func() bool {
		m = c.migration(id)
		return m.State.Final() || m.Attempt > 1
	})
	want := "the guest was left paused on " + srcName + " (user) and is resumed there"
	if !strings.Contains(m.Reason, want) {
		t.Errorf("%s: %s attempt %d, %q; want its end to say %q", id, m.State, m.Attempt, m.Reason, want)
	}
	if st, err := sh.Status(context.Background(), migrate.DomainRef{Name: name}); err != nil || st.State != fsm.VMRunning {
		t.Errorf("%s on %s after the leader settled: %+v %v; want it running", name, srcName, st, err)
	}
	c.Restart(src)
	c.cancelAndWait(t, id)
	c.checkTruth(t)
}
