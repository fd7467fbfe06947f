package testcluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
)

// Issue 10, hypervisor side: the hypervisors are the truth about a
// migration, whatever happened to the meshd that started it. Each test
// ends with the checker: every VM runs on exactly one hypervisor, and no
// migration attempt was started twice on a hypervisor.

// pair picks a source and a destination that are not the leader, so that
// crashing either leaves the leader (which settles) in place.
func (c *Cluster) pair(t *testing.T) (src, dst int) {
	t.Helper()
	l := c.Leader(10 * time.Second)
	var others []int
	for i := range c.cfgs {
		if c.Node(i) != nil && c.Node(i) != l {
			others = append(others, i)
		}
	}
	if len(others) < 2 {
		t.Fatalf("need two hosts besides the leader, have %v", others)
	}
	return others[0], others[1]
}

// startMigration defines a VM of memMiB on src and migrates it to dst (any
// host placement picks when dst < 0) at mib MiB/s with policy, then waits
// until pct percent of it was copied.
func (c *Cluster) startMigration(t *testing.T, src, dst int, memMiB, mib uint64, policy string, pct float64, dirty float64) (string, string) {
	t.Helper()
	h, _ := c.Reg.Host(HostName(src))
	spec := simVM("big-"+HostName(src), memMiB)
	spec.DirtyMiBps = dirty
	if err := h.Define(spec); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(30*time.Second, spec.Name+" in every replica", func() bool {
		for _, nd := range c.Nodes() {
			ok := false
			nd.FSM().Read(func(s *fsm.State) { _, v, err := s.ResolveVM(spec.Name); ok = err == nil && v != nil })
			if !ok {
				return false
			}
		}
		return true
	})
	req := migrateTo(spec.Name, "", mib)
	if dst >= 0 {
		req.To = HostName(dst)
	}
	req.Policy = policy
	id, err := c.Migrate(c.Leader(10*time.Second).APIAddr(), req)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(60*time.Second, fmt.Sprintf("%s at %.0f%%", id, pct), func() bool { return c.migration(id).Progress.Percent >= pct })
	return id, spec.Name
}

// checkTruth is the checker of these tests (CheckTruth): every VM on
// exactly one hypervisor, the state equal to the hypervisors, no
// migration left Running, no attempt started twice, every replica
// identical.
func (c *Cluster) checkTruth(t *testing.T) {
	t.Helper()
	c.CheckTruth(t, 30*time.Second)
}

// runsOn lists the hosts whose hypervisor runs vm.
func (c *Cluster) runsOn(vm string) []string { return c.VMPlacement()[vm] }

func (c *Cluster) slotsFree(t *testing.T) {
	t.Helper()
	c.WaitFor(10*time.Second, "every slot free", func() bool {
		u := c.Leader(10 * time.Second).FSM().State().Slots()
		for _, m := range []map[string]int{u.Out, u.In, u.Cluster} {
			for _, k := range m {
				if k != 0 {
					return false
				}
			}
		}
		return true
	})
}

// TestSourceCrashMidMigrationReattaches: the source's meshd dies (SIGKILL:
// no abort) at about 30% of a pre-copy. The job runs on in the hypervisor;
// the leader sees the source Down and records that the job still runs;
// the restarted meshd re-attaches, goes on watching it and reports its
// success. It was started once.
func TestSourceCrashMidMigrationReattaches(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 40})
	src, dst := c.pair(t)
	id, vm := c.startMigration(t, src, dst, 8192, 20, "", 30, 0)
	c.Crash(src)
	c.WaitFor(30*time.Second, "the leader to record that the job still runs", func() bool {
		return strings.Contains(c.migration(id).Unsettled, "still runs")
	})
	before := c.migration(id).Progress
	c.Restart(src)
	restarted := time.Now()
	c.WaitFor(30*time.Second, "the restarted source to report again", func() bool {
		m := c.migration(id)
		return m.Progress.At.After(restarted) && m.Unsettled == ""
	})
	t.Logf("re-attached and reporting %s after the restart (progress %.0f%% → %.0f%%)",
		time.Since(restarted).Round(time.Millisecond), before.Percent, c.migration(id).Progress.Percent)
	m := c.waitFinal(id, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.Attempt != 1 || m.Reason != "" || m.DowntimeMs <= 0 {
		t.Fatalf("%s: %s attempt %d %q downtime %d ms; want watched to success on attempt 1", id, m.State, m.Attempt, m.Reason, m.DowntimeMs)
	}
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(dst)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(dst))
	}
	c.checkTruth(t)
	c.slotsFree(t)
}

// TestJobEndsWhileSourceStaysDown: the source's meshd dies and stays down;
// the job completes in the hypervisor; the leader settles the migration
// Succeeded from the hypervisors, and its slots are free.
func TestJobEndsWhileSourceStaysDown(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 20})
	src, dst := c.pair(t)
	id, vm := c.startMigration(t, src, dst, 4096, 40, "", 30, 0)
	c.Crash(src)
	c.WaitFor(60*time.Second, vm+" running on "+HostName(dst), func() bool {
		return slices.Equal(c.runsOn(vm), []string{HostName(dst)})
	})
	ended := time.Now()
	m := c.waitFinal(id, 60*time.Second)
	t.Logf("settled %s after the job ended: %s", time.Since(ended).Round(time.Millisecond), m.Reason)
	if m.State != fsm.MigSucceeded || !strings.Contains(m.Reason, "settled by the leader") {
		t.Fatalf("%s: %s %q; want Succeeded, settled by the leader", id, m.State, m.Reason)
	}
	c.slotsFree(t)
	c.Restart(src)
	c.WaitFor(30*time.Second, HostName(src)+" Up again", func() bool {
		_, st := c.drainState(HostName(src))
		return st == fsm.HostUp
	})
	c.checkTruth(t)
}

// TestSourceHostDiesLeaderSettlesFailed: the whole source host dies (its
// hypervisor does not answer, the stream broke). The destination has no
// copy of the guest: the leader settles the migration Failed, not retried
// (a Down source sends nothing), within the settle bound, and frees its
// slots.
func TestSourceHostDiesLeaderSettlesFailed(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 20})
	src, dst := c.pair(t)
	id, vm := c.startMigration(t, src, dst, 8192, 20, "", 30, 0)
	c.Kill(src)
	killed := time.Now()
	m := c.waitFinal(id, 30*time.Second)
	t.Logf("settled %s after the host died: %s", time.Since(killed).Round(time.Millisecond), m.Reason)
	if m.State != fsm.MigFailed || m.Attempt != 1 || !strings.Contains(m.Reason, "never switched over") {
		t.Fatalf("%s: %s attempt %d %q; want Failed, never switched over", id, m.State, m.Attempt, m.Reason)
	}
	c.slotsFree(t)
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(src)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(src))
	}
	c.checkTruth(t)
}

// TestCancelOfAnOrphan: an operator cancels a migration whose source meshd
// is down while its job runs on: the leader aborts the job on the source's
// hypervisor and ends the migration Cancelled, the guest still on the
// source and nothing reserved on the destination.
func TestCancelOfAnOrphan(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 20})
	src, dst := c.pair(t)
	id, vm := c.startMigration(t, src, dst, 8192, 20, "", 30, 0)
	c.Crash(src)
	c.WaitFor(30*time.Second, "the leader to record that the job still runs", func() bool {
		return strings.Contains(c.migration(id).Unsettled, "still runs")
	})
	if err := c.Call(c.Leader(10*time.Second).APIAddr(), "POST", "/v1/migrations/"+id+"/cancel", nil, nil); err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	m := c.waitFinal(id, 30*time.Second)
	t.Logf("cancel ended the orphan after %s: %s", time.Since(cancelled).Round(time.Millisecond), m.Reason)
	if m.State != fsm.MigCancelled {
		t.Fatalf("%s: %s %q; want Cancelled", id, m.State, m.Reason)
	}
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(src)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(src))
	}
	if h, _ := c.Reg.Host(HostName(dst)); h.Incoming() != 0 {
		t.Errorf("%s still holds %d incoming reservations", HostName(dst), h.Incoming())
	}
	c.slotsFree(t)
	c.checkTruth(t)
}

// TestPostCopyStallCarriesOnNeverRetried: with the defaults, a post-copy
// whose migration link goes down stalls and is NOT broken off: the
// migration stays Running on its first attempt saying that it stalls,
// with an alarm after a minute, and when the link is back its stream
// carries on and it succeeds with no resume.
func TestPostCopyStallCarriesOnNeverRetried(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 4})
	id, h, dh := c.cutPostCopy(t)
	var alarmed bool
	c.WaitFor(60*time.Second, "the stall noted with an alarm", func() bool {
		m := c.migration(id)
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
			_, alarmed = s.Alarms[fsm.AlarmKey(fsm.AlarmMigrationUnsettled, s.MigrationVMKey(s.Migrations[id]))]
		})
		return strings.Contains(m.Unsettled, "post-copy stalled") && alarmed
	})
	m := c.migration(id)
	t.Logf("while the link is down: %s attempt %d: %s", m.State, m.Attempt, m.Unsettled)
	if m.State != fsm.MigRunning || m.Attempt != 1 || len(m.Tried) != 0 {
		t.Fatalf("stalled post-copy: %s attempt %d tried %v; want Running on attempt 1", m.State, m.Attempt, m.Tried)
	}
	dh.SetLinkDown(false)
	m = c.waitFinal(id, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.Attempt != 1 || len(m.Tried) != 0 || h.Resumes() != 0 {
		t.Fatalf("%s: %s attempt %d tried %v, %d resumes; want Succeeded on attempt 1 with no resume", id, m.State, m.Attempt, m.Tried, h.Resumes())
	}
	if slices.Contains(m.Progress.Actions, "post-copy interrupted") {
		t.Errorf("actions %v: the stall was broken off", m.Progress.Actions)
	}
	c.checkTruth(t)
	c.slotsFree(t)
}

// TestPostCopyBreaksResumesNeverRetried: a post-copy whose migration link
// goes down stalls past the stream timeout (10 s here); the source breaks
// it off and the migration stays Running on its first attempt (the guest's
// memory is split: it is never retried elsewhere), saying why; when the
// link is back the source resumes it and it succeeds.
func TestPostCopyBreaksResumesNeverRetried(t *testing.T) {
	// Slower time: the post-copy phase (256 MiB at 32 MiB/s, 8 s) must
	// last long enough in real time for the test to cut the link in it.
	c := New(t, Options{Hosts: 3, TimeScale: 4, Monitor: migrate.MonitorConfig{PostCopyStreamTimeout: 10 * time.Second}})
	id, h, dh := c.cutPostCopy(t)
	c.WaitFor(30*time.Second, "the source to say the post-copy broke", func() bool {
		return strings.Contains(c.migration(id).Unsettled, "post-copy broke")
	})
	m := c.migration(id)
	t.Logf("while the link is down: %s attempt %d: %s", m.State, m.Attempt, m.Unsettled)
	if m.State != fsm.MigRunning || m.Attempt != 1 || len(m.Tried) != 0 {
		t.Fatalf("broken post-copy: %s attempt %d tried %v; want Running on attempt 1", m.State, m.Attempt, m.Tried)
	}
	if got := c.runsOn("hot"); !slices.Equal(got, []string{dh.Name()}) {
		t.Errorf("during the break hot runs on %v, want %s (paused, post-copy failed)", got, dh.Name())
	}
	dh.SetLinkDown(false)
	m = c.waitFinal(id, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.Attempt != 1 || len(m.Tried) != 0 || h.Resumes() != 1 {
		t.Fatalf("%s: %s attempt %d tried %v, %d resumes; want Succeeded on attempt 1 after one resume", id, m.State, m.Attempt, m.Tried, h.Resumes())
	}
	if !slices.Contains(m.Progress.Actions, "post-copy interrupted") {
		t.Errorf("actions %v: the break is not recorded", m.Progress.Actions)
	}
	c.checkTruth(t)
	c.slotsFree(t)
}

// TestDestinationCrashMidMigration: the destination's meshd dies; its
// hypervisor takes the guest anyway, and the source, which watches the
// job, reports the success.
func TestDestinationCrashMidMigration(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 20})
	src, dst := c.pair(t)
	id, vm := c.startMigration(t, src, dst, 4096, 40, "", 30, 0)
	c.Crash(dst)
	m := c.waitFinal(id, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.Reason != "" {
		t.Fatalf("%s: %s %q; want Succeeded, reported by its source", id, m.State, m.Reason)
	}
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(dst)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(dst))
	}
	c.Restart(dst)
	c.WaitFor(30*time.Second, vm+" recorded on "+HostName(dst), func() bool {
		var host string
		c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
			if _, v, err := s.ResolveVM(vm); err == nil {
				host = v.Host
			}
		})
		return host == HostName(dst)
	})
	c.checkTruth(t)
}

// TestJobFailsWhileSourceRestarts: the job breaks while the source's meshd
// is down (the destination's streams reset), and the meshd is back before
// the leader noticed. It finds no job, sees from both hypervisors that the
// guest never left, reports the failure (not "source restarted"), and the
// retry runs elsewhere: each attempt started once.
func TestJobFailsWhileSourceRestarts(t *testing.T) {
	c := New(t, Options{Hosts: 4, TimeScale: 40})
	src, _ := c.pair(t)
	id, vm := c.startMigration(t, src, -1, 8192, 20, "", 30, 0)
	dst := c.migration(id).Dest
	c.Crash(src)
	dh, _ := c.Reg.Host(dst)
	if n := dh.BreakMigrations(); n != 1 {
		t.Fatalf("broke %d jobs, want 1", n)
	}
	c.Restart(src)
	var first fsm.Migration
	c.WaitFor(30*time.Second, "attempt 1 settled", func() bool {
		first = c.migration(id)
		return first.Attempt > 1 || first.State.Final()
	})
	if first.Attempt != 2 || !strings.Contains(first.Reason, "retrying") || strings.Contains(first.Reason, "restarted") {
		t.Fatalf("after the restart: attempt %d, %s %q; want a retry of a settled failure", first.Attempt, first.State, first.Reason)
	}
	m := c.waitFinal(id, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.Attempt != 2 || slices.Contains(c.runsOn(vm), dst) {
		t.Fatalf("%s: %s attempt %d on %s; want success of the retry elsewhere", id, m.State, m.Attempt, m.Dest)
	}
	if s := c.Starts(); s[id+"#1"] != 1 || s[id+"#2"] != 1 {
		t.Errorf("starts %v: want each attempt once", s)
	}
	c.checkTruth(t)
}

// cutPostCopy migrates a 256 MiB guest dirtying 64 MiB/s ("hot") with the
// post-copy policy at 32 MiB/s, waits until the guest runs on the
// destination (the switch), and takes the destination's migration link
// down. It returns the migration's ID and the source and destination
// hypervisors.
func (c *Cluster) cutPostCopy(t *testing.T) (id string, srcHV, dstHV *sim.Host) {
	t.Helper()
	src, dst := c.pair(t)
	srcHV, _ = c.Reg.Host(HostName(src))
	spec := simVM("hot", 256)
	spec.DirtyMiBps = 64
	if err := srcHV.Define(spec); err != nil {
		t.Fatal(err)
	}
	c.waitVMs(1)
	req := migrateTo("hot", HostName(dst), 32)
	req.Policy = "post-copy"
	id, err := c.Migrate(c.Leader(10*time.Second).APIAddr(), req)
	if err != nil {
		t.Fatal(err)
	}
	// the guest runs on the destination once the switch happened
	c.WaitFor(60*time.Second, "the switch to post-copy", func() bool { return slices.Equal(c.runsOn("hot"), []string{HostName(dst)}) })
	dstHV, _ = c.Reg.Host(HostName(dst))
	dstHV.SetLinkDown(true)
	return id, srcHV, dstHV
}
