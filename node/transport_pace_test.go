package node

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func appendReq(term, prev, commit uint64, entries ...uint64) *raft.AppendEntriesRequest {
	a := &raft.AppendEntriesRequest{Term: term, PrevLogEntry: prev, PrevLogTerm: term, LeaderCommitIndex: commit}
	for _, i := range entries {
		a.Entries = append(a.Entries, &raft.Log{Index: i, Term: term})
	}
	return a
}

// An idle pipeline's repeated empty append is held; anything that tells
// the follower something new (entries, a new commit index, a new term, an
// uncommitted entry on the leader) is sent at once.
func TestPacerHoldsOnlyRedundantAppends(t *testing.T) {
	p := newPacer(time.Hour, time.Hour)
	p.leading(10)
	h := raft.ServerID("h2")
	steps := []struct {
		what string
		req  *raft.AppendEntriesRequest
		held bool
	}{
		{"first append of a pipeline", appendReq(2, 10, 10), false},
		{"the same again", appendReq(2, 10, 10), true},
		{"new entries", appendReq(2, 10, 10, 11, 12), false},
		{"empty after entries, commit not moved", appendReq(2, 12, 10), false},
		{"the commit index moved", appendReq(2, 12, 12), false},
		{"nothing new", appendReq(2, 12, 12), true},
		{"a new term", appendReq(3, 12, 12), false},
	}
	for _, st := range steps {
		if st.what == "new entries" {
			p.mu.Lock()
			p.stored = 12 // the leader stored 11-12 (kickLogStore)
			p.mu.Unlock()
		}
		wait, _ := p.appendWait(h, st.req)
		p.peer(h).lastAppend = time.Now()
		if (wait > 0) != st.held {
			t.Fatalf("%s: held %v (wait %s), want held %v", st.what, wait > 0, wait, st.held)
		}
	}
	// Stored but not committed: the next empty append carries news.
	p.mu.Lock()
	p.stored = 13
	p.mu.Unlock()
	if wait, _ := p.appendWait(h, appendReq(3, 12, 12)); wait != 0 {
		t.Fatalf("an append while an entry awaits its commit was held %s", wait)
	}
}

// A held append is released when the leader stores new entries, and a
// pipeline's end aborts it.
func TestPacerKickReleasesHeldAppend(t *testing.T) {
	p := newPacer(time.Hour, time.Hour)
	h := raft.ServerID("h2")
	if !p.holdAppend(h, appendReq(2, 5, 5), nil) {
		t.Fatal("first append refused")
	}
	wait, wake := p.appendWait(h, appendReq(2, 5, 5))
	if wait == 0 {
		t.Fatal("a redundant append was not held")
	}
	if err := (kickLogStore{LogStore: raft.NewInmemStore(), p: p}).StoreLogs([]*raft.Log{{Index: 6, Term: 2}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("storing new entries did not release the held append")
	}
	if !p.holdAppend(h, appendReq(2, 6, 6), nil) { // commit moved to 6 = stored: sent at once
		t.Fatal("an append with a new commit index was refused")
	}
	stop := make(chan struct{})
	close(stop)
	if p.holdAppend(h, appendReq(2, 6, 6), stop) {
		t.Fatal("the pipeline's end did not abort the held append")
	}
}

// Heartbeats: voters are never held; a non-voter is held only after the
// grace, and then until 1.5 periods passed since anything was sent to it.
func TestPacerHeartbeats(t *testing.T) {
	p := newPacer(time.Hour, 0)
	v, nv := raft.ServerID("h2"), raft.ServerID("h7")
	p.setNonvoters([]raft.ServerID{nv})
	if w, _ := p.heartbeatWait(v); w != 0 {
		t.Fatalf("a voter's heartbeat held %s", w)
	}
	if w, _ := p.heartbeatWait(nv); w != 0 {
		t.Fatalf("a non-voter never contacted: heartbeat held %s", w)
	}
	p.sent(nv)
	if w, _ := p.heartbeatWait(nv); w < time.Hour {
		t.Fatalf("a non-voter contacted just now: heartbeat held only %s", w)
	}
	_, abort := p.heartbeatWait(nv)
	p.kick() // a write: the held heartbeat stays held
	select {
	case <-abort:
		t.Fatal("storing new entries released a non-voter's held heartbeat")
	default:
	}
	p.voter(nv)
	if w, _ := p.heartbeatWait(nv); w != 0 {
		t.Fatalf("a promoted non-voter's heartbeat held %s", w)
	}
	g := newPacer(time.Hour, time.Hour)
	g.setNonvoters([]raft.ServerID{nv})
	g.sent(nv)
	if w, _ := g.heartbeatWait(nv); w != 0 {
		t.Fatalf("a non-voter within its grace: heartbeat held %s", w)
	}
	p.stop()
	select {
	case <-abort:
	default:
		t.Fatal("stop did not release a held heartbeat")
	}
	p.setNonvoters([]raft.ServerID{nv})
	if w, _ := p.heartbeatWait(nv); w != 0 {
		t.Fatalf("after stop: heartbeat held %s", w)
	}
}

// The leader closes its pooled connections to paced non-voters (their
// heartbeats are held, the connections would sit idle) and keeps the
// voters'.
func TestDropPacedClosesIdleConnsToNonvoters(t *testing.T) {
	p := newPacer(time.Hour, 0)
	tr := &raftTransport{pace: p, pool: map[poolKey][]*rpcConn{}}
	conn := func(id string) (*rpcConn, net.Conn) {
		a, b := net.Pipe()
		c := &rpcConn{key: poolKey{raft.ServerID(id), raft.ServerAddress(id + ":7000")}, conn: a}
		tr.pool[c.key] = append(tr.pool[c.key], c)
		return c, b
	}
	_, voterPeer := conn("h2")
	_, nvPeer := conn("h7")
	p.setNonvoters([]raft.ServerID{"h7"})
	tr.dropPaced()
	if n := len(tr.pool[poolKey{"h7", "h7:7000"}]); n != 0 {
		t.Fatalf("%d pooled connections to the paced non-voter remain", n)
	}
	if n := len(tr.pool[poolKey{"h2", "h2:7000"}]); n != 1 {
		t.Fatalf("%d pooled connections to the voter, want 1", n)
	}
	if _, err := nvPeer.Read(make([]byte, 1)); err == nil {
		t.Fatal("the non-voter's connection is still open")
	}
	_ = voterPeer.Close()
}
