package testcluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// TestFailedMigrationNeverLeavesItsGuestPaused: suspend-workload pauses a
// guest on its source; its job then fails (the destination's streams
// break). Whoever learns of the failure resumes the guest on the source
// and says so in the migration's end, and so in the event log:
//
//   - the source's meshd watching the job;
//   - the source's meshd restarted after it died with the guest paused
//     (it settles the attempt from the hypervisors);
//   - the leader, when the source's meshd stays down (it settles the
//     migration through the source's hypervisor, which still answers).
//
// Before, only migrate/virt's job resumed the guest, from the meshd that
// watched it: a meshd that died left it paused for good while the state
// said it ran.
func TestFailedMigrationNeverLeavesItsGuestPaused(t *testing.T) {
	c := New(t, Options{Hosts: 4, TimeScale: 40})
	src, dst := c.pair(t)
	srcName := HostName(src)
	sh, _ := c.Reg.Host(srcName)
	dh, _ := c.Reg.Host(HostName(dst))

	// pausedMigration starts a suspend-workload migration of a fresh guest
	// that out-dirties its bandwidth and waits until the policy paused it.
	pausedMigration := func(name string) string {
		t.Helper()
		spec := simVM(name, 4096)
		spec.DirtyMiBps = 60
		if err := sh.Define(spec); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(30*time.Second, name+" in the state", func() bool {
			ok := false
			c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) { _, v, err := s.ResolveVM(name); ok = err == nil && v != nil })
			return ok
		})
		id, err := c.Migrate(c.Leader(10*time.Second).APIAddr(), api.MigrateRequest{VM: name, To: HostName(dst), BandwidthMiB: 10,
			Policy: migrate.PolicySuspendWorkload})
		if err != nil {
			t.Fatal(err)
		}
		c.WaitFor(90*time.Second, name+" paused by its policy", func() bool {
			st, err := sh.Status(context.Background(), migrate.DomainRef{Name: name})
			return err == nil && st.State == fsm.VMPaused && st.Reason == migrate.ReasonUser
		})
		return id
	}
	// failedAndResumed checks the attempt's end: Failed, the guest on the
	// source resumed there, the resume in the reason and the event log.
	failedAndResumed := func(id, name, how string, resumedBefore int) {
		t.Helper()
		var m fsm.Migration
		c.WaitFor(60*time.Second, id+"'s first attempt ended", func() bool {
			m = c.migration(id)
			return m.State.Final() || m.Attempt > 1
		})
		// a retry elsewhere keeps the first attempt's end in its reason
		want := fmt.Sprintf("the guest was left paused on %s (user) and is resumed there", srcName)
		if !strings.Contains(m.Reason, want) {
			t.Errorf("%s (%s): %s attempt %d, %q; want its end to say %q", id, how, m.State, m.Attempt, m.Reason, want)
		}
		if got := sh.ResumedGuests(); got != resumedBefore+1 {
			t.Errorf("%s (%s): %d guests resumed on %s, want %d", id, how, got, srcName, resumedBefore+1)
		}
		c.WaitFor(30*time.Second, "the event log says "+name+" was resumed", func() bool {
			page, err := c.Client(c.Leader(10*time.Second).APIAddr()).Events(context.Background(), api.EventQuery{VM: name})
			if err != nil {
				return false
			}
			for _, e := range page.Events {
				if strings.Contains(e.Message, want) {
					return true
				}
			}
			return false
		})
	}

	// 1. watched: the source's meshd sees the job fail
	id := pausedMigration("paused-watched")
	dh.BreakMigrations()
	failedAndResumed(id, "paused-watched", "watched", 0)
	c.cancelAndWait(t, id)

	// 2. the source's meshd dies with the guest paused; the job fails
	// while it is down; it comes back and settles the attempt
	id = pausedMigration("paused-restart")
	c.Crash(src)
	dh.BreakMigrations()
	c.Restart(src)
	failedAndResumed(id, "paused-restart", "settled by the restarted source", 1)
	c.cancelAndWait(t, id)

	// 3. the same, and the source's meshd stays down: the leader settles.
	// Its proof that the migration paused the guest is the pause in the
	// state, committed before the pause was made (see
	// TestPauseCommittedBeforeItIsMade for a source that dies at once).
	id = pausedMigration("paused-leader")
	c.WaitFor(30*time.Second, "the pause reported", func() bool { return c.migration(id).Progress.SuspendedAtMs > 0 })
	c.Crash(src)
	dh.BreakMigrations()
	failedAndResumed(id, "paused-leader", "settled by the leader", 2)
	if st, err := sh.Status(context.Background(), migrate.DomainRef{Name: "paused-leader"}); err != nil || st.State != fsm.VMRunning {
		t.Errorf("paused-leader on %s: %+v %v; want it running", srcName, st, err)
	}
	c.Restart(src)
	c.checkTruth(t)
}

// cancelAndWait cancels a migration that may have been retried elsewhere
// (its guest must not move again while the test goes on) and waits until
// it ended.
func (c *Cluster) cancelAndWait(t *testing.T, id string) {
	t.Helper()
	if m := c.migration(id); !m.State.Final() {
		_ = c.Call(c.Leader(10*time.Second).APIAddr(), "POST", "/v1/migrations/"+id+"/cancel", map[string]string{}, nil)
	}
	c.waitFinal(id, 60*time.Second)
}
