package testcluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// The checker of the fault tests (issue 10): after a fault has healed, and
// within the settle bound,
//
//   - every VM runs on exactly one hypervisor, and none was lost;
//   - the state equals the hypervisors: every VM recorded on the host
//     whose hypervisor runs it, none recorded that no hypervisor runs;
//   - no migration is left Running (each one settled);
//   - no migration attempt was started twice on a hypervisor;
//   - every replica is identical (same applied index, same state).
//
// It returns the violations it found, one line each, so that a fault
// schedule can count them; CheckTruth fails the test on any.

// truthViolations waits up to bound for the mesh to agree with its
// hypervisors and returns what still disagrees. vms is the set of VMs the
// test defined (nil: whatever the hypervisors run).
func (c *Cluster) truthViolations(bound time.Duration, vms []string) []string {
	var last []string
	err := Poll(bound, 100*time.Millisecond, func() bool {
		last = c.truthOnce(vms)
		return len(last) == 0
	})
	if err == nil {
		return nil
	}
	return last
}

// truthOnce compares the mesh with its hypervisors once.
func (c *Cluster) truthOnce(vms []string) []string {
	var out []string
	place := c.VMPlacement()
	for vm, hosts := range place {
		if len(hosts) != 1 {
			out = append(out, fmt.Sprintf("vm %s runs on %d hypervisors: %v", vm, len(hosts), hosts))
		}
	}
	for _, vm := range vms {
		if len(place[vm]) == 0 {
			out = append(out, fmt.Sprintf("vm %s runs on no hypervisor", vm))
		}
	}
	for id, k := range c.Starts() {
		if k > 1 {
			out = append(out, fmt.Sprintf("migration attempt %s was started %d times on a hypervisor", id, k))
		}
	}
	l := c.leaderOrNil()
	if l == nil {
		return append(out, "no leader")
	}
	l.FSM().Read(func(s *fsm.State) {
		recorded := map[string]string{}
		for _, v := range s.VMs {
			recorded[v.Name] = v.Host
		}
		for vm, hosts := range place {
			if h, ok := recorded[vm]; !ok {
				out = append(out, fmt.Sprintf("vm %s runs on %v but the state does not know it", vm, hosts))
			} else if len(hosts) == 1 && h != hosts[0] {
				out = append(out, fmt.Sprintf("vm %s runs on %s but the state says %s", vm, hosts[0], h))
			}
		}
		for vm, h := range recorded {
			if len(place[vm]) == 0 {
				out = append(out, fmt.Sprintf("vm %s is recorded on %s but no hypervisor runs it", vm, h))
			}
		}
		for _, m := range s.Running() {
			out = append(out, fmt.Sprintf("migration %s of %s (%s → %s, attempt %d) still Running: %s", m.ID, m.VM, m.Source, m.Dest, m.Attempt, m.Unsettled))
		}
	})
	if !replicasIdentical(c) {
		out = append(out, "replicas differ: "+c.replicaIndexes())
	}
	sort.Strings(out)
	return out
}

// leaderOrNil is the leader of the live hosts, nil when there is none.
func (c *Cluster) leaderOrNil() *node.Node {
	for _, n := range c.Nodes() {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// replicaIndexes names each live replica's applied index, for a message,
// with what explains a replica left behind: its Raft state, the leader it
// knows, and its place in the leader's configuration ("out" when it is not
// in it).
func (c *Cluster) replicaIndexes() string {
	suffrage := map[string]string{}
	if l := c.leaderOrNil(); l != nil {
		if f := l.Raft().GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				suffrage[string(s.ID)] = s.Suffrage.String()
			}
		}
	}
	var parts []string
	for _, n := range c.Nodes() {
		_, leader := n.Raft().LeaderWithID()
		role := suffrage[n.Name()]
		if role == "" {
			role = "out"
		}
		st := n.Raft().Stats()
		parts = append(parts, fmt.Sprintf("%s@%d(%s, %s, leader %q, log %s, commit %s)", n.Name(), n.FSM().Index(), n.Raft().State(), role, leader,
			st["last_log_index"], st["commit_index"]))
	}
	return strings.Join(parts, " ")
}

// CheckTruth fails the test on any violation the checker finds within
// bound.
func (c *Cluster) CheckTruth(t testing.TB, bound time.Duration, vms ...string) {
	t.Helper()
	for _, v := range c.truthViolations(bound, vms) {
		t.Errorf("checker: %s", v)
	}
}

// vmNames lists every VM the hypervisors run, sorted.
func (c *Cluster) vmNames() []string {
	var out []string
	for vm := range c.VMPlacement() {
		out = append(out, vm)
	}
	slices.Sort(out)
	return out
}
