package testcluster

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// indexOf is the index of a live node among the cluster's hosts.
func (c *Cluster) indexOf(name string) int {
	for i := range c.cfgs {
		if HostName(i) == name {
			return i
		}
	}
	c.t.Fatalf("no host %s", name)
	return -1
}

// TestLeaderSourceCrashMidMigration: the leader is the source and its
// meshd dies (SIGKILL: the job runs on in the hypervisor) at about 30% of
// a pre-copy. A new leader is elected; it settles the migration from the
// hypervisors (the job still runs, or ended with the guest on the
// destination), and once the old leader's meshd is back the migration has
// ended Succeeded on its first attempt, started once, with the checker
// green.
func TestLeaderSourceCrashMidMigration(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 40})
	src := c.indexOf(c.Leader(10 * time.Second).Name())
	dst := (src + 1) % 3
	id, vm := c.startMigration(t, src, dst, 8192, 20, "", 30, 0)
	c.Crash(src)
	crashed := time.Now()
	c.WaitFor(30*time.Second, "a new leader", func() bool {
		l := c.leaderOrNil()
		return l != nil && l.Name() != HostName(src)
	})
	m := c.waitFinal(id, 60*time.Second)
	t.Logf("settled %s after the leader (the source) crashed: %s %q", time.Since(crashed).Round(time.Millisecond), m.State, m.Reason)
	if m.State != fsm.MigSucceeded || m.Attempt != 1 || !strings.Contains(m.Reason, "settled by the leader") {
		t.Fatalf("%s: %s attempt %d %q; want Succeeded on attempt 1, settled by the new leader", id, m.State, m.Attempt, m.Reason)
	}
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(dst)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(dst))
	}
	c.Restart(src)
	c.CheckTruth(t, 30*time.Second)
}

// TestLeaderBystanderCrashMidMigration: the leader is neither source nor
// destination and its meshd dies mid-migration. The source goes on
// watching the job and reports its end to the new leader; the migration
// succeeds on its first attempt, and after the old leader is back every
// replica agrees with the hypervisors.
func TestLeaderBystanderCrashMidMigration(t *testing.T) {
	c := New(t, Options{Hosts: 3, TimeScale: 40})
	src, dst := c.pair(t)
	leader := c.indexOf(c.Leader(10 * time.Second).Name())
	id, vm := c.startMigration(t, src, dst, 8192, 20, "", 30, 0)
	c.Crash(leader)
	crashed := time.Now()
	m := c.waitFinal(id, 60*time.Second)
	t.Logf("ended %s after the leader crashed: %s %q", time.Since(crashed).Round(time.Millisecond), m.State, m.Reason)
	if m.State != fsm.MigSucceeded || m.Attempt != 1 || m.Reason != "" {
		t.Fatalf("%s: %s attempt %d %q; want Succeeded on attempt 1, reported by its source", id, m.State, m.Attempt, m.Reason)
	}
	if got := c.runsOn(vm); !slices.Equal(got, []string{HostName(dst)}) {
		t.Errorf("%s runs on %v, want %s", vm, got, HostName(dst))
	}
	c.Restart(leader)
	c.CheckTruth(t, 30*time.Second)
}
