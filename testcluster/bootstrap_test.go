package testcluster

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/daemon"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate/sim"
	"github.com/hostmesh/hostmesh/node"
)

// raftServers is a node's Raft configuration as "name:suffrage" words.
func raftServers(n *node.Node) []string {
	f := n.Raft().GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		out = append(out, string(s.ID)+":"+s.Suffrage.String())
	}
	return out
}

// replicasIdentical reports whether every running node has applied the same
// index and holds the same state.
func replicasIdentical(c *Cluster) bool {
	var want []byte
	var idx uint64
	for i, n := range c.Nodes() {
		b, err := json.Marshal(n.FSM().State())
		if err != nil {
			return false
		}
		if i == 0 {
			want, idx = b, n.FSM().Index()
			continue
		}
		if n.FSM().Index() != idx || string(b) != string(want) {
			return false
		}
	}
	return want != nil
}

// TestBootstrapExpectFormsOneMesh: three hosts started together with
// --bootstrap-expect 3 form one mesh with all three as voters, bootstrapped
// by exactly one of them.
func TestBootstrapExpectFormsOneMesh(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 3, BootstrapExpect: 3, Logger: slog.New(logs)})
	leader := c.Leader(20 * time.Second)
	want := []string{"h1:Voter", "h2:Voter", "h3:Voter"}
	c.WaitFor(20*time.Second, "every host holding the 3-voter configuration", func() bool {
		for _, n := range c.Nodes() {
			if !reflect.DeepEqual(raftServers(n), want) {
				return false
			}
		}
		return true
	})
	boots := logs.Lines(slog.LevelInfo, "bootstrapped a new mesh")
	if len(boots) != 1 || boots[0].Attrs["node"] != "h1" || boots[0].Attrs["voters"] != "[h1 h2 h3]" {
		t.Fatalf("bootstraps logged: %v, want one by h1 with voters h1 h2 h3", boots)
	}
	c.WaitFor(20*time.Second, "every replica lists 3 hosts Up", allHostsUp(c, 3))
	t.Logf("leader %s", leader.Name())
}

// TestEmptyDataDirWithoutBootstrapOrJoinRefused: a host with nothing to join
// and no bootstrap asked for does not start a mesh of its own: node.New
// refuses, and meshd exits 2 saying which flags to pass.
func TestEmptyDataDirWithoutBootstrapOrJoinRefused(t *testing.T) {
	reg := sim.NewRegistry(sim.Config{})
	t.Cleanup(reg.Close)
	h, err := reg.AddHost(sim.HostSpec{Name: "lonely", CPUModel: "Skylake-Server", MemTotalMiB: 4096, CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lonely")
	_, err = node.New(node.Config{Name: "lonely", DataDir: dir, DevMode: true, Fast: true,
		Hypervisor: h, HypervisorKind: "sim", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, node.ErrNoBootstrap) {
		t.Fatalf("node.New without bootstrap or join = %v, want ErrNoBootstrap", err)
	}
	for _, flag := range []string{"--bootstrap", "--bootstrap-expect", "--join"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("refusal does not mention %s: %v", flag, err)
		}
	}

	var out, errOut strings.Builder
	app := daemon.App(&out, &errOut)
	err = app.Run([]string{"meshd", "--name", "lonely2", "--data-dir", filepath.Join(t.TempDir(), "d"), "--dev",
		"--hypervisor", "sim", "--gossip-port", "0", "--raft-port", "0", "--api-port", "0", "--log-level", "error"})
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 2 || !strings.Contains(err.Error(), "--bootstrap") {
		t.Fatalf("meshd without bootstrap or join: %v, want exit 2 naming --bootstrap", err)
	}
	err = app.Run([]string{"meshd", "--name", "both", "--data-dir", filepath.Join(t.TempDir(), "d"), "--dev",
		"--hypervisor", "sim", "--bootstrap", "--bootstrap-expect", "3"})
	if !errors.As(err, &ec) || ec.ExitCode() != 2 {
		t.Fatalf("meshd --bootstrap --bootstrap-expect 3: %v, want exit 2", err)
	}
}

// TestWipedHostRejoinsWithJoin: a host whose data dir was lost, started with
// --join (and even with --bootstrap still on its command line), rejoins the
// mesh it was in and gets the whole state back; no second mesh appears. A
// restart with state ignores the bootstrap flag and says so.
func TestWipedHostRejoinsWithJoin(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, Logger: slog.New(logs)})
	c.Leader(10 * time.Second)
	c.waitVMs(6)
	want := fsm.DefaultCluster("c1")
	want.MaxConcurrent = 4
	if err := c.putCluster(c.Node(1).APIAddr(), want); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "replicas identical before the wipe", func() bool { return replicasIdentical(c) })

	// h1 bootstrapped the mesh and runs with Bootstrap set: wipe it too, the
	// worst case.
	for _, i := range []int{2, 0} {
		name := HostName(i)
		c.Kill(i)
		c.Wipe(i)
		c.Restart(i)
		c.WaitFor(30*time.Second, name+" back with the whole state, replicas identical", func() bool {
			n := c.Node(i)
			var got fsm.Cluster
			n.FSM().Read(func(s *fsm.State) { got = s.Cluster("c1") })
			return got.MaxConcurrent == 4 && len(n.FSM().State().VMs) == 6 && replicasIdentical(c)
		})
		leaders := 0
		for _, n := range c.Nodes() {
			if n.IsLeader() {
				leaders++
			}
		}
		if leaders != 1 {
			t.Fatalf("after wiping %s: %d leaders", name, leaders)
		}
	}
	if l := logs.Lines(slog.LevelInfo, "bootstrapped a new mesh"); len(l) != 1 {
		t.Fatalf("bootstraps logged: %v, want only h1's first", l)
	}
	if l := logs.Lines(slog.LevelWarn, "a mesh exists already", "node", "h1"); len(l) == 0 {
		t.Errorf("wiped h1 with --bootstrap did not say it joins the existing mesh instead")
	}

	// A restart with state: the flag is ignored, and said so.
	c.Kill(0)
	c.Restart(0)
	c.WaitFor(30*time.Second, "h1 restarted, replicas identical", func() bool {
		return len(c.Nodes()) == 3 && replicasIdentical(c) && c.Node(0).Raft().Leader() != ""
	})
	if l := logs.Lines(slog.LevelInfo, "ignored", "node", "h1"); len(l) == 0 {
		t.Errorf("h1 restarted with state and --bootstrap did not log that the flag is ignored")
	}
}
