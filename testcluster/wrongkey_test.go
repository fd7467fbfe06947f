package testcluster

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/node"
)

// TestWrongGossipKeyNotAdmitted is the attack matrix's line "a host with a
// wrong gossip key is not admitted and says why": it keeps running, logs an
// ERROR naming the key mismatch at every join attempt, meshctl status on it
// says it is not in a mesh and exits 3, the members log memberlist's reason
// too, and no member ever lists it, in gossip or in the replicated state.
func TestWrongGossipKeyNotAdmitted(t *testing.T) {
	meshLogs := NewLogCapture()
	c := New(t, Options{Hosts: 3, Logger: slog.New(meshLogs)})
	c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "3 hosts Up everywhere", allHostsUp(c, 3))

	wrong, err := gossip.KeyFromString(gossip.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	logs := NewLogCapture()
	var name string
	i := c.AddHost(func(cfg *node.Config) {
		cfg.GossipKey, cfg.Logger, name = wrong, slog.New(logs), cfg.Name
	})
	intruder := c.Node(i)

	admitted := func() string {
		for j := 0; j < 3; j++ {
			n := c.Node(j)
			if _, ok := n.Gossip().Member(name); ok {
				return n.Name() + "'s gossip lists " + name
			}
			var inState bool
			n.FSM().Read(func(s *fsm.State) { inState = s.Hosts[name] != nil })
			if inState {
				return n.Name() + "'s replica lists " + name
			}
		}
		return ""
	}
	mismatches := func() []LogLine { return logs.Lines(slog.LevelError, "gossip key mismatch") }
	c.WaitFor(30*time.Second, "3 ERRORs of the wrong-key host naming the key mismatch", func() bool {
		if why := admitted(); why != "" {
			t.Fatalf("the host with the wrong key was admitted: %s", why)
		}
		return len(mismatches()) >= 3
	})
	if l := mismatches()[0]; !strings.Contains(l.Attrs["cause"], "no installed keys could decrypt the message") {
		t.Errorf("the ERROR does not carry memberlist's reason: %v", l)
	}
	if l := meshLogs.Lines(slog.LevelError, "no installed keys could decrypt the message"); len(l) == 0 {
		t.Error("no member logged memberlist's reason for refusing the host")
	}

	code, out, errOut := c.meshctl(t, intruder.APIAddr(), "status")
	if code != 3 || !strings.Contains(errOut, "not in a mesh") || !strings.Contains(errOut, "gossip key mismatch") ||
		!strings.Contains(out, "1 member(s) alive") {
		t.Fatalf("status on the wrong-key host: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	t.Logf("meshctl status on the wrong-key host, exit %d:\n%s%s", code, out, errOut)
	t.Logf("its log: %v", mismatches()[0])
	code, out, _ = c.meshctl(t, intruder.APIAddr(), "status", "--json")
	var st api.Status
	if code != 3 || json.Unmarshal([]byte(out), &st) != nil || st.Leader != "" || st.GossipMembers != 1 || st.JoinError == "" {
		t.Fatalf("status --json on the wrong-key host: exit %d\n%s", code, out)
	}
	if code, out, _ := c.meshctl(t, c.Node(0).APIAddr(), "status"); code != 0 || !strings.Contains(out, "3 member(s) alive") {
		t.Fatalf("status on a member: exit %d\n%s", code, out)
	}
	if why := admitted(); why != "" {
		t.Fatalf("the host with the wrong key was admitted: %s", why)
	}
}
