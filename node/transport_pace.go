package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// pacer makes an idle leader's Raft traffic flat in the number of hosts
// (issue 15). hashicorp/raft sends every follower, voter or not, a
// heartbeat every HeartbeatTimeout/10 (50-100 ms at meshd's 500 ms) and,
// on the replication pipeline, an empty AppendEntries every CommitTimeout
// (50-100 ms) whether or not anything changed: about 27 RPCs per second
// per follower, 2,600 per second from the leader of 100 hosts, over TLS,
// while nothing happens. The profile of such a leader (bench/RESULTS.md)
// spent most of its CPU there.
//
// Voters keep every heartbeat: their lease and a failover under 2 s
// depend on them. What the pacer holds back:
//
//   - an empty AppendEntries on a pipeline that tells its follower nothing
//     new (same term, same previous index, same commit index as the last
//     one sent on it) waits until `every` passed since the last append on
//     that pipeline. New log entries stored on the leader release it at
//     once (kick), so a write is never delayed, and an append carrying a
//     new commit index is never held: a follower still learns a commit
//     within one CommitTimeout.
//   - a heartbeat to a non-voter waits until nothing was sent to it for
//     1.5 × `every`, so in an idle mesh the pipeline's paced append is the
//     non-voter's only message, once per `every`. Non-voters run a longer
//     heartbeat timeout (suffrage.go) so that this rate keeps their leader
//     known; a non-voter is paced only `grace` after the leader first saw
//     it as one, time for it to have switched.
//
// Nothing is answered in a follower's place: a held RPC is sent late, never
// faked, so Raft's view of each follower stays what the follower said.
type pacer struct {
	every, grace time.Duration

	mu        sync.Mutex
	peers     map[raft.ServerID]*peerPace
	nonvoters map[raft.ServerID]time.Time // since when the leader saw each as a non-voter
	wake      chan struct{}               // closed and replaced by kick
	stopped   chan struct{}               // closed by stop
	off       bool
	// held counts the RPCs that waited (tests and the idle benchmark).
	held atomic.Uint64
	// stored is the index of the last entry stored in the log: while the
	// commit index has not reached it, empty appends carry news (the
	// commit index will move) and are never held.
	stored uint64
}

// peerPace is what was last sent to one follower.
type peerPace struct {
	lastSent   time.Time // any RPC
	lastAppend time.Time // last pipelined append
	sent       bool      // an append was sent on the pipeline
	term       uint64
	prev       uint64
	commit     uint64
}

func newPacer(every, grace time.Duration) *pacer {
	return &pacer{every: every, grace: grace, peers: map[raft.ServerID]*peerPace{},
		nonvoters: map[raft.ServerID]time.Time{}, wake: make(chan struct{}), stopped: make(chan struct{})}
}

func (p *pacer) peer(id raft.ServerID) *peerPace {
	ps := p.peers[id]
	if ps == nil {
		ps = &peerPace{}
		p.peers[id] = ps
	}
	return ps
}

// kick releases every held RPC: new entries were stored, or the leader
// steps down or shuts down.
func (p *pacer) kick() {
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// stop releases everything held and holds nothing more (shutdown).
func (p *pacer) stop() {
	p.mu.Lock()
	if !p.off {
		p.off = true
		close(p.stopped)
	}
	p.mu.Unlock()
	p.kick()
}

// setNonvoters records the followers that are non-voters now; every other
// peer is paced as a voter from this call on.
func (p *pacer) setNonvoters(ids []raft.ServerID) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[raft.ServerID]time.Time, len(ids))
	for _, id := range ids {
		if since, ok := p.nonvoters[id]; ok {
			next[id] = since
		} else {
			next[id] = now
		}
	}
	p.nonvoters = next
}

// leading resets what a new leader knows was stored: last is its log's
// last index (an entry stored while it followed may have been truncated).
func (p *pacer) leading(last uint64) {
	p.mu.Lock()
	p.stored = last
	p.peers = map[raft.ServerID]*peerPace{}
	p.mu.Unlock()
}

// voter marks id a voter at once (before it is promoted: a voter must
// never miss heartbeats).
func (p *pacer) voter(id raft.ServerID) {
	p.mu.Lock()
	delete(p.nonvoters, id)
	p.mu.Unlock()
}

// paced reports whether heartbeats to id are held (a non-voter past its
// grace).
func (p *pacer) paced(id raft.ServerID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	since, nv := p.nonvoters[id]
	return !p.off && nv && time.Since(since) >= p.grace
}

// sent records an RPC sent to id.
func (p *pacer) sent(id raft.ServerID) {
	p.mu.Lock()
	p.peer(id).lastSent = time.Now()
	p.mu.Unlock()
}

// isHeartbeat tells Raft's heartbeat from a replication append: the
// heartbeat carries no entries, no previous entry and no commit index.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return len(a.Entries) == 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && a.LeaderCommitIndex == 0
}

// heartbeatWait is how long a heartbeat to id must wait now (0: send),
// and what ends the wait early: only stop. New entries do not (a write
// would release a heartbeat to every non-voter, which the append carrying
// the entries makes useless).
func (p *pacer) heartbeatWait(id raft.ServerID) (time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	since, nv := p.nonvoters[id]
	if p.off || !nv || time.Since(since) < p.grace {
		return 0, nil
	}
	return max(time.Until(p.peer(id).lastSent.Add(p.every*3/2)), 0), p.stopped
}

// holdHeartbeat waits while a heartbeat to a paced non-voter is not due.
// done aborts the wait (the transport closed).
func (p *pacer) holdHeartbeat(id raft.ServerID, done <-chan struct{}) {
	for {
		wait, wake := p.heartbeatWait(id)
		if wait <= 0 {
			return
		}
		p.held.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
			return
		case <-done:
			t.Stop()
			return
		}
	}
}

// appendWait records a pipelined append about to be sent to id and says
// how long it must wait first (0: send): an append that tells its follower
// nothing new waits until `every` passed since the last one.
func (p *pacer) appendWait(id raft.ServerID, a *raft.AppendEntriesRequest) (time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.peer(id)
	redundant := len(a.Entries) == 0 && ps.sent && a.Term == ps.term && a.PrevLogEntry == ps.prev &&
		a.LeaderCommitIndex == ps.commit && a.LeaderCommitIndex >= p.stored
	ps.sent, ps.term, ps.commit = true, a.Term, a.LeaderCommitIndex
	ps.prev = a.PrevLogEntry
	if n := len(a.Entries); n > 0 {
		ps.prev = a.Entries[n-1].Index
	}
	if !redundant || p.off {
		return 0, nil
	}
	return max(time.Until(ps.lastAppend.Add(p.every)), 0), p.wake
}

// holdAppend waits as appendWait says, then records the append as sent.
// It returns false when stop closed (the pipeline ended) during the wait.
func (p *pacer) holdAppend(id raft.ServerID, a *raft.AppendEntriesRequest, stop <-chan struct{}) bool {
	if wait, wake := p.appendWait(id, a); wait > 0 {
		p.held.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
		case <-stop:
			t.Stop()
			return false
		}
	}
	p.mu.Lock()
	p.peer(id).lastAppend = time.Now()
	p.mu.Unlock()
	return true
}

// kickLogStore is the leader's log store, kicking the pacer whenever Raft
// stores new entries: Raft stores them before it wakes the replication of
// each follower, so a held append is released before the entries are sent.
type kickLogStore struct {
	raft.LogStore
	p *pacer
}

func (s kickLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s kickLogStore) StoreLogs(ls []*raft.Log) error {
	err := s.LogStore.StoreLogs(ls)
	if n := len(ls); n > 0 {
		s.p.mu.Lock()
		s.p.stored = max(s.p.stored, ls[n-1].Index)
		s.p.mu.Unlock()
	}
	s.p.kick()
	return err
}
