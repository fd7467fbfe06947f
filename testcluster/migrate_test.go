package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// migration reads a migration from the leader's replica.
func (c *Cluster) migration(id string) fsm.Migration {
	var m fsm.Migration
	c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
		if v := s.Migrations[id]; v != nil {
			m = *v
		}
	})
	return m
}

func (c *Cluster) waitFinal(id string, timeout time.Duration) fsm.Migration {
	c.t.Helper()
	var m fsm.Migration
	c.WaitFor(timeout, "migration "+id+" to end", func() bool {
		m = c.migration(id)
		return m.State.Final()
	})
	return m
}

func (c *Cluster) assertOneHostPerVM(t *testing.T) {
	t.Helper()
	for vm, hosts := range c.VMPlacement() {
		if len(hosts) != 1 {
			t.Errorf("VM %s is on %d hosts: %v", vm, len(hosts), hosts)
		}
	}
}

func TestMigrateChoosesHostAndMovesVM(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs replicated", func() bool { return len(l.FSM().State().VMs) == 6 })
	// Make h3 the obvious choice: h2 holds more memory.
	id, err := c.Migrate(c.Node(1).APIAddr(), api.MigrateRequest{VM: "vm-h1-0"})
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitFinal(id, 30*time.Second)
	if m.State != fsm.MigSucceeded {
		t.Fatalf("migration %s: %s (%s)", id, m.State, m.Reason)
	}
	if m.Dest == "h1" || m.PlacementReason == "" || m.DowntimeMs <= 0 {
		t.Fatalf("dest %s, reason %q, downtime %d", m.Dest, m.PlacementReason, m.DowntimeMs)
	}
	c.WaitFor(10*time.Second, "every replica has the VM on "+m.Dest, func() bool {
		for _, n := range c.Nodes() {
			if _, vm, _ := n.FSM().State().ResolveVM("vm-h1-0"); vm == nil || vm.Host != m.Dest {
				return false
			}
		}
		return true
	})
	if got := c.VMPlacement()["vm-h1-0"]; len(got) != 1 || got[0] != m.Dest {
		t.Fatalf("hypervisors hold vm-h1-0 on %v, want only %s", got, m.Dest)
	}
}

func TestRefusalsNameTheirCheck(t *testing.T) {
	c := New(t, Options{Hosts: 4, VMsPerHost: 1, HostMemMiB: 4096, VMMemMiB: 512,
		Cluster: func(i int) string {
			if i == 3 {
				return "other"
			}
			return "c1"
		},
		Networks: func(i int) []fsm.Network {
			if i == 2 {
				return []fsm.Network{{Name: "storage-only"}}
			}
			return []fsm.Network{{Name: "vmnet"}}
		}})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "4 hosts and VMs", func() bool {
		s := l.FSM().State()
		return len(s.Hosts) == 4 && len(s.VMs) == 4
	})
	cases := []struct{ to, check string }{
		{"h1", "distinct-hosts"},
		{"h4", "same-cluster"},
		{"h3", "networks"},
		{"nowhere", "no such host"},
	}
	for _, tc := range cases {
		_, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", To: tc.to})
		if err == nil || !strings.Contains(err.Error(), tc.check) {
			t.Errorf("migrate to %s: got %v, want a refusal naming %q", tc.to, err, tc.check)
		}
	}
	// Not enough memory: fill h2 so a 512 MiB VM no longer fits.
	h2, _ := c.Reg.Host("h2")
	for i := 0; i < 7; i++ {
		if err := h2.Define(simVM(fmt.Sprintf("filler%d", i), 512)); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitFor(10*time.Second, "h2's free memory gossiped", func() bool { return l.FSM().State().Hosts["h2"].MemFreeMiB < 512 })
	if _, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", To: "h2"}); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("migrate to a full host: got %v, want a memory refusal", err)
	}
	if _, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", Policy: "yolo"}); err == nil || !strings.Contains(err.Error(), "policy") {
		t.Errorf("unknown policy: got %v", err)
	}
	c.assertOneHostPerVM(t)
}

func TestFiftyQueuedMigrationsNeverExceedSlots(t *testing.T) {
	c := New(t, Options{Hosts: 5, VMsPerHost: 10, VMMemMiB: 256, HostMemMiB: 32768})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "50 VMs", func() bool { return len(l.FSM().State().VMs) == 50 })
	w := c.WatchSlots(5 * time.Millisecond)
	var ids []string
	for i := 0; i < 5; i++ {
		for j := 0; j < 10; j++ {
			id, err := c.Migrate(c.Node(j%5).APIAddr(), api.MigrateRequest{VM: fmt.Sprintf("vm-h%d-%d", i+1, j)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if m := c.waitFinal(id, 120*time.Second); m.State != fsm.MigSucceeded {
			t.Errorf("%s (%s): %s %s", id, m.VM, m.State, m.Reason)
		}
	}
	samples, bad, maxRunning := w.Stop()
	t.Logf("%d samples, at most %d running at once", samples, maxRunning)
	if len(bad) > 0 {
		t.Fatalf("limits exceeded %d times, first: %s", len(bad), bad[0])
	}
	if samples < 20 || maxRunning < 2 {
		t.Fatalf("the watch saw too little: %d samples, max running %d", samples, maxRunning)
	}
	c.assertOneHostPerVM(t)
}

func TestCancelRunningMigrationKeepsVMOnSource(t *testing.T) {
	c := New(t, Options{Hosts: 2, VMsPerHost: 1, VMMemMiB: 8192, TimeScale: 2})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 2 })
	id, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", BandwidthMiB: 20})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "migration running with progress", func() bool {
		m := c.migration(id)
		return m.State == fsm.MigRunning && m.Progress.ProcessedBytes > 0
	})
	if err := c.Call(c.Node(1).APIAddr(), "POST", "/v1/migrations/"+id+"/cancel", nil, nil); err != nil {
		t.Fatal(err)
	}
	m := c.waitFinal(id, 20*time.Second)
	if m.State != fsm.MigCancelled {
		t.Fatalf("state %s (%s)", m.State, m.Reason)
	}
	if got := c.VMPlacement()["vm-h1-0"]; len(got) != 1 || got[0] != "h1" {
		t.Fatalf("cancelled VM on %v, want h1", got)
	}
}

func TestFailedMigrationIsRetriedOnAnotherHost(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 3 })
	h1, _ := c.Reg.Host("h1")
	h1.FailNextMigration(errors.New("injected: connection reset on the migration network"))
	id, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0"})
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitFinal(id, 30*time.Second)
	if m.State != fsm.MigSucceeded || m.Attempt != 2 || len(m.Tried) != 1 || m.Tried[0] == m.Dest {
		t.Fatalf("want success on the second attempt elsewhere: %+v", m)
	}
	c.assertOneHostPerVM(t)
}

func TestLeaderKilledWithMigrationsQueuedAndRunning(t *testing.T) {
	c := New(t, Options{Hosts: 4, VMsPerHost: 4, VMMemMiB: 1024, TimeScale: 10})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "16 VMs", func() bool { return len(l.FSM().State().VMs) == 16 })
	leaderIdx := 0
	for i := range 4 {
		if c.Node(i) == l {
			leaderIdx = i
		}
	}
	// Migrate VMs of the non-leader hosts (the leader's own would die with it).
	var ids []string
	var addr string
	for i := range 4 {
		if i == leaderIdx {
			continue
		}
		addr = c.Node(i).APIAddr()
		for j := range 4 {
			id, err := c.Migrate(addr, api.MigrateRequest{VM: fmt.Sprintf("vm-h%d-%d", i+1, j)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	c.WaitFor(20*time.Second, "some migrations running", func() bool { return len(l.FSM().State().Running()) > 0 })
	c.Kill(leaderIdx)
	nl := c.Leader(15 * time.Second)
	for _, id := range ids {
		m := c.waitFinal(id, 120*time.Second)
		// A migration headed to the killed leader fails and is retried
		// elsewhere; none may be lost or left hanging.
		if m.State != fsm.MigSucceeded && !strings.Contains(m.Reason, HostName(leaderIdx)) {
			t.Errorf("%s (%s): %s %s", id, m.VM, m.State, m.Reason)
		}
	}
	// Nothing ran twice: every VM is on exactly one hypervisor, and each VM
	// has at most one successful migration.
	c.assertOneHostPerVM(t)
	ok := map[string]int{}
	for _, m := range nl.FSM().State().Migrations {
		if m.State == fsm.MigSucceeded {
			ok[m.VM]++
		}
	}
	for vm, k := range ok {
		if k > 1 {
			t.Errorf("VM %s migrated %d times", vm, k)
		}
	}
}

// TestAutoBandwidthFollowsRunningMigrations: in an auto-bandwidth cluster the
// migrations running share the migration network. A second migration
// halves the first one's cap (the job itself slows down), the caps never
// add up to more than the network on any sample, and when one ends the
// other gets the whole network back.
func TestAutoBandwidthFollowsRunningMigrations(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, VMMemMiB: 16384, HostMemMiB: 65536, TimeScale: 1})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 6 })
	cl := fsm.DefaultCluster("c1")
	cl.BandwidthMode, cl.MigrationNetMiB = fsm.BandwidthAuto, 64
	if err := c.Call(l.APIAddr(), "PUT", "/v1/clusters/c1", cl, nil); err != nil {
		t.Fatal(err)
	}
	w := c.WatchSlots(5 * time.Millisecond)
	rate := func(id string) float64 { return c.migration(id).Progress.MiBps }
	a, err := c.Migrate(l.APIAddr(), migrateTo("vm-h1-0", "h2", 0))
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, a+" running alone at 64 MiB/s", func() bool { return rate(a) == 64 })
	b, err := c.Migrate(l.APIAddr(), migrateTo("vm-h1-1", "h3", 0))
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "both running at 32 MiB/s", func() bool {
		ma, mb := c.migration(a), c.migration(b)
		return ma.GrantedMiB == 32 && mb.GrantedMiB == 32 && rate(a) == 32 && rate(b) == 32
	})
	if err := c.Call(l.APIAddr(), "POST", "/v1/migrations/"+b+"/cancel", nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := c.waitFinal(b, 20*time.Second); m.State != fsm.MigCancelled {
		t.Fatalf("%s: %s (%s)", b, m.State, m.Reason)
	}
	c.WaitFor(20*time.Second, a+" back at 64 MiB/s", func() bool { return c.migration(a).GrantedMiB == 64 && rate(a) == 64 })
	if err := c.Call(l.APIAddr(), "POST", "/v1/migrations/"+a+"/cancel", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.waitFinal(a, 20*time.Second)
	samples, bad, _ := w.Stop()
	t.Logf("%d samples", samples)
	if len(bad) > 0 {
		t.Fatalf("limits exceeded %d times, first: %s", len(bad), bad[0])
	}
	c.assertOneHostPerVM(t)
}

// TestBlockingReadOfMigration: GET /v1/migrations/{id}?index=N waits until
// the replica applies an entry past N, answers the index it read at, gives
// up after ?wait=, and refuses a bad index.
func TestBlockingReadOfMigration(t *testing.T) {
	c := New(t, Options{Hosts: 2, VMsPerHost: 1})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 2 })
	id, err := c.Migrate(l.APIAddr(), migrateTo("vm-h1-0", "h2", 0))
	if err != nil {
		t.Fatal(err)
	}
	c.waitFinal(id, 30*time.Second)
	follower := c.Client(c.Node(1).APIAddr())
	get := func(q *api.QueryOptions) (uint64, time.Duration, error) {
		t.Helper()
		start := time.Now()
		_, meta, err := follower.Migration(context.Background(), id, q)
		return meta.LastIndex, time.Since(start), err
	}
	now, _, err := get(nil)
	if err != nil || now == 0 {
		t.Fatalf("plain read: %v, index %d", err, now)
	}
	// An index the mesh will not reach in time: the read waits out ?wait=.
	if idx, took, err := get(&api.QueryOptions{WaitIndex: now + 1_000_000, WaitTime: 300 * time.Millisecond}); err != nil || took < 300*time.Millisecond || idx < now {
		t.Errorf("read past a far index: %v after %s, index %d; want an answer after ≥ 300ms", err, took, idx)
	}
	// The current index: the read answers once something is committed.
	type answer struct {
		idx  uint64
		took time.Duration
	}
	got := make(chan answer, 1)
	go func() {
		idx, took, _ := get(&api.QueryOptions{WaitIndex: now, WaitTime: 20 * time.Second})
		got <- answer{idx, took}
	}()
	cl := fsm.DefaultCluster("c1")
	cl.MaxOutgoing = 1
	if err := c.Call(l.APIAddr(), "PUT", "/v1/clusters/c1", cl, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.idx <= now {
			t.Errorf("blocking read answered index %d, not past %d", a.idx, now)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking read still waiting 10 s after a committed change")
	}
	var ae *api.Error
	if err := follower.Do(context.Background(), "GET", "/v1/migrations/"+id+"?index=abc", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("index=abc: %v, want a 400", err)
	}
}
