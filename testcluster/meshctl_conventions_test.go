package testcluster

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
)

// ndjson parses stdout line by line: each line one JSON object, nothing
// else; it returns each object's "event".
func ndjsonEvents(t *testing.T, what, out string) ([]string, []map[string]json.RawMessage) {
	t.Helper()
	var evs []string
	var objs []map[string]json.RawMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var o map[string]json.RawMessage
		var ev string
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil || json.Unmarshal(o["event"], &ev) != nil {
			t.Fatalf("%s: stdout line %q is not a JSON event (%v)\nstdout:\n%s", what, sc.Text(), err, out)
		}
		evs, objs = append(evs, ev), append(objs, o)
	}
	if len(evs) < 2 || evs[0] != "queued" || evs[len(evs)-1] != "end" {
		t.Fatalf("%s: events %v, want queued … end", what, evs)
	}
	return evs, objs
}

// TestMeshctlConventions runs meshctl's conventions against a real mesh,
// every command sent to a follower: the gossip and Raft views, the exit
// codes of unknown objects and of refusals forwarded to the leader (their
// message as the leader wrote it), a cluster name typo, NDJSON of
// migrate and drain --wait -o json, and exit 3 once the mesh lost its
// leader.
func TestMeshctlConventions(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, TimeScale: 40})
	c.waitVMs(3)
	leader := c.Leader(10 * time.Second)
	fi := 0
	if c.Node(0) == leader {
		fi = 1
	}
	addr := c.Node(fi).APIAddr()
	ctl := func(want int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := c.meshctl(t, addr, args...)
		if code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out, errOut
	}

	// Gossip's view and Raft's.
	c.WaitFor(30*time.Second, "3 alive members in a mesh", func() bool {
		code, out, _ := c.meshctl(t, addr, "members", "-o", "json")
		var ms []api.Member
		if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
			return false
		}
		for _, m := range ms {
			if m.Status != "alive" || !m.InMesh || m.Cluster == "" || m.Addr == "" {
				return false
			}
		}
		return true
	})
	out, _ := ctl(0, "members")
	if !strings.Contains(out, "ADDRESS") || strings.Count(out, "alive") != 3 {
		t.Errorf("members table:\n%s", out)
	}
	out, _ = ctl(0, "raft", "list-peers", "-o", "json")
	var peers []api.RaftPeer
	if err := json.Unmarshal([]byte(out), &peers); err != nil || len(peers) != 3 {
		t.Fatalf("raft peers: %v\n%s", err, out)
	}
	leaders := 0
	for _, p := range peers {
		if p.Leader {
			leaders++
			if p.ID != leader.Name() {
				t.Errorf("raft peers names %s leader, the mesh's is %s", p.ID, leader.Name())
			}
		}
		if p.Suffrage != "voter" || p.Address == "" {
			t.Errorf("raft peer %+v", p)
		}
	}
	if leaders != 1 {
		t.Errorf("raft peers: %d leaders\n%s", leaders, out)
	}
	out, _ = ctl(0, "raft", "peers")
	if !strings.Contains(out, "leader") || strings.Count(out, "follower") != 2 {
		t.Errorf("raft peers table:\n%s", out)
	}

	// A typo in a cluster's name: an error, and nothing created.
	_, errOut := ctl(2, "cluster", "c9")
	if !strings.Contains(errOut, `no such cluster "c9"`) {
		t.Errorf("cluster c9: %q", errOut)
	}
	ctl(2, "cluster", "c9", "--max-outgoing", "3")
	out, _ = ctl(0, "clusters", "-o", "json")
	if strings.Contains(out, `"c9"`) {
		t.Fatalf("a PUT to an unknown cluster created it:\n%s", out)
	}
	ctl(0, "cluster", "c9", "--create", "--max-outgoing", "3")
	out, _ = ctl(0, "cluster", "c9", "-o", "yaml")
	if !strings.Contains(out, "name: c9\n") || !strings.Contains(out, "max_outgoing: 3\n") {
		t.Errorf("cluster c9 -o yaml after --create:\n%s", out)
	}

	// Unknown objects in writes: 2, through the follower too.
	for _, args := range [][]string{{"drain", "h9"}, {"activate", "h9"}, {"drain", "h9", "--cancel"}, {"cancel", "m999"}, {"migrate", "vm-h9-0"}} {
		_, errOut := ctl(2, args...)
		if !strings.Contains(errOut, "no such") {
			t.Errorf("meshctl %v: %q does not say it is unknown", args, errOut)
		}
	}

	// migrate --wait -o json: NDJSON on stdout, the text on stderr.
	vm := "vm-h" + string(rune('1'+fi)) + "-0"
	out, errOut = ctl(0, "migrate", vm, "--wait", "-o", "json")
	_, objs := ndjsonEvents(t, "migrate --wait -o json", out)
	var end api.Migration
	if err := json.Unmarshal(objs[len(objs)-1]["migration"], &end); err != nil || end.State != api.MigSucceeded || end.VM != vm {
		t.Fatalf("end event %s (%v)", objs[len(objs)-1]["migration"], err)
	}
	if !strings.Contains(errOut, "moved "+HostName(fi)+" → ") {
		t.Errorf("stderr lacks the closing line: %q", errOut)
	}

	// drain --wait --json of the follower itself (its VM left already;
	// the VM now on it, if any, moves).
	target := end.Dest
	out, _ = ctl(0, "drain", target, "--wait", "--json")
	evs, objs := ndjsonEvents(t, "drain --wait --json", out)
	var d api.Drain
	if err := json.Unmarshal(objs[len(objs)-1]["drain"], &d); err != nil || d.State != api.DrainDone {
		t.Fatalf("drain end event %s (%v); events %v", objs[len(objs)-1]["drain"], err, evs)
	}
	// A refusal forwarded to the leader: 1, its message once.
	_, errOut = ctl(1, "drain", target)
	if strings.Count(errOut, "command rejected") > 1 || !strings.Contains(errOut, target) {
		t.Errorf("refused drain through a follower: %q", errOut)
	}

	// No leader: the follower's writes and its status exit 3.
	for i := 0; i < 3; i++ {
		if i != fi {
			c.Crash(i)
		}
	}
	c.WaitFor(60*time.Second, "the follower to see no leader", func() bool {
		code, _, _ := c.meshctl(t, addr, "status")
		return code == 3
	})
	_, errOut = ctl(3, "activate", target)
	if !strings.Contains(errOut, "leader") {
		t.Errorf("a write without a leader: %q", errOut)
	}
}
