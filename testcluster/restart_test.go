package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// hypervisorPlacement is what the sim hypervisors run: VM → host, and the
// count of VMs not running.
func (c *Cluster) hypervisorPlacement(t *testing.T) (map[string]string, int) {
	t.Helper()
	out, notRunning := map[string]string{}, 0
	for i := range c.opts.Hosts {
		h, ok := c.Reg.Host(HostName(i))
		if !ok {
			t.Fatalf("sim host %s missing", HostName(i))
		}
		doms, err := h.Domains(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range doms {
			if prev, dup := out[d.Name]; dup {
				t.Errorf("VM %s runs on %s and %s", d.Name, prev, HostName(i))
			}
			out[d.Name] = HostName(i)
			if d.State != fsm.VMRunning {
				notRunning++
			}
		}
	}
	return out, notRunning
}

// replicaView is what a replica holds of VMs and migrations, as JSON so
// replicas compare byte for byte.
func replicaView(s *fsm.State) (placement map[string]string, migrations int, view string) {
	placement = map[string]string{}
	for _, vm := range s.VMs {
		placement[vm.Name] = vm.Host
	}
	b, _ := json.Marshal(struct {
		VMs        map[string]*fsm.VM
		Migrations map[string]*fsm.Migration
	}{s.VMs, s.Migrations})
	return placement, len(s.Migrations), string(b)
}

// TestRestartKeepsVMsInPlace stops meshd as its SIGTERM does (node.Stop:
// no drain, no leave) and starts it again from its data dir, on every host
// in turn, the leader first. Checker after each restart: every VM on
// exactly one hypervisor and still running there, the replicated state
// equal to the hypervisors on every replica, every replica identical, and
// no migration ever started.
func TestRestartKeepsVMsInPlace(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 4})
	c.waitVMs(12)
	want, _ := c.hypervisorPlacement(t)
	order := []int{}
	leader := c.Leader(10 * time.Second).Name()
	for i := range c.opts.Hosts {
		if HostName(i) == leader {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	for _, i := range order {
		start := time.Now()
		c.Node(i).Stop()
		c.Kill(i)
		c.Restart(i)
		var why string
		if err := Poll(60*time.Second, 20*time.Millisecond, func() bool {
			nodes := c.Nodes()
			if len(nodes) != c.opts.Hosts {
				why = "not every node runs"
				return false
			}
			var first string
			for _, nd := range nodes {
				var up int
				var view string
				nd.FSM().Read(func(s *fsm.State) {
					for _, h := range s.Hosts {
						if h.State == fsm.HostUp {
							up++
						}
					}
					_, _, view = replicaView(s)
				})
				if up != c.opts.Hosts {
					why = fmt.Sprintf("%s sees %d hosts Up", nd.Name(), up)
					return false
				}
				if first == "" {
					first = view
				} else if view != first {
					why = "replicas differ"
					return false
				}
			}
			return true
		}); err != nil {
			t.Fatalf("%s back Up with every replica agreeing: %v: %s", HostName(i), err, why)
		}
		t.Logf("restart of %s: the mesh agreed again after %v", HostName(i), time.Since(start).Round(time.Millisecond))

		got, notRunning := c.hypervisorPlacement(t)
		if len(got) != len(want) || notRunning != 0 {
			t.Fatalf("after restarting %s: hypervisors run %d VMs (%d not running), want %d running", HostName(i), len(got), notRunning, len(want))
		}
		moved := 0
		for vm, h := range want {
			if got[vm] != h {
				moved++
				t.Errorf("after restarting %s: VM %s on hypervisor %s, was on %s", HostName(i), vm, got[vm], h)
			}
		}
		for _, nd := range c.Nodes() {
			var placement map[string]string
			var migrations int
			nd.FSM().Read(func(s *fsm.State) { placement, migrations, _ = replicaView(s) })
			if migrations != 0 {
				t.Errorf("after restarting %s: replica %s holds %d migrations, want none started", HostName(i), nd.Name(), migrations)
			}
			for vm, h := range got {
				if placement[vm] != h {
					t.Errorf("after restarting %s: replica %s says %s is on %q, its hypervisor is %s", HostName(i), nd.Name(), vm, placement[vm], h)
				}
			}
			if len(placement) != len(got) {
				t.Errorf("after restarting %s: replica %s holds %d VMs, hypervisors run %d", HostName(i), nd.Name(), len(placement), len(got))
			}
		}
		t.Logf("after restarting %s: %d VMs kept in place, %d moved", HostName(i), len(got)-moved, moved)
	}
}
