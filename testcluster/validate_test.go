package testcluster

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// TestMalformedCommandsNeverEnterTheLog: the internal apply route on the
// host port (the leader's, and a follower's that forwards) answers a malformed command
// with 400 and an oversized one with 413, and none of them reaches the log:
// a 10 MiB junk body grew every replica's raft.db by 27 MiB before.
func TestMalformedCommandsNeverEnterTheLog(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	l := c.Leader(10 * time.Second)
	c.waitVMs(3)
	c.WaitFor(10*time.Second, "every replica on the current log version", func() bool {
		for _, n := range c.Nodes() {
			var v int
			n.FSM().Read(func(s *fsm.State) { v = s.LogVersion })
			if v != fsm.LogVersion {
				return false
			}
		}
		return true
	})
	dbSize := func() int64 {
		var sum int64
		for i := range c.cfgs {
			st, err := os.Stat(filepath.Join(c.cfgs[i].DataDir, "raft", "raft.db"))
			if err != nil {
				t.Fatal(err)
			}
			sum += st.Size()
		}
		return sum
	}
	before := dbSize()
	var follower string
	for _, n := range c.Nodes() {
		if !n.IsLeader() {
			follower = n.RaftAddr()
		}
	}
	junk := bytes.Repeat([]byte("A"), 10<<20)
	cases := []struct {
		name   string
		body   []byte
		status int
	}{
		{"10 MiB of junk", junk, http.StatusRequestEntityTooLarge},
		{"unknown type", []byte{100, '{', '}'}, http.StatusBadRequest},
		{"unknown field", append([]byte{byte(fsm.CmdEnqueue)}, []byte(`{"vm":"vm-h1-0","evil":1,"at":"2026-11-26T12:00:00Z"}`)...), http.StatusBadRequest},
		{"finish without attempt", append([]byte{byte(fsm.CmdFinish)}, []byte(`{"id":"m1","state":"Failed","at":"2026-11-26T12:00:00Z"}`)...), http.StatusBadRequest},
		{"absurd CPUs", append([]byte{byte(fsm.CmdUpsertHost)}, []byte(`{"facts":{"name":"hx","cluster":"c1","cpus":-5}}`)...), http.StatusBadRequest},
	}
	for _, tc := range cases {
		for _, addr := range []string{l.RaftAddr(), follower} {
			_, _, err := c.HostClient(addr, "probe").InternalApply(context.Background(), tc.body)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Errorf("%s to %s: %v, want status %d", tc.name, addr, err, tc.status)
			}
		}
	}
	if grew := dbSize() - before; grew > 1<<20 {
		t.Fatalf("the replicas' raft.db grew by %d bytes after refused commands", grew)
	}
	var ae *api.Error
	if err := c.putCluster(l.APIAddr(), fsm.Cluster{Name: "c1", MaxOutgoing: 1, MaxIncoming: 1, MaxConcurrent: 1,
		BandwidthMode: "warp", Policy: "minimal-downtime"}); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("a cluster with an unknown bandwidth mode: %v, want 400", err)
	}
}
