package node

import (
	"errors"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// A host that joins gets, from the leader, the entries its log still holds
// after the latest snapshot, or all of them while nothing was compacted. With
// Raft's defaults (snapshot every 4,096 entries, keep 10,240 after it) a mesh
// of fewer than ~10,000 entries is never compacted, so every joining host was
// sent the whole log. And every host is a Raft member: each joins with one
// configuration entry that lists every server (~50 bytes each), so the log
// of a growing mesh is quadratic in its hosts. The leader of the fleet bench
// at ~500 hosts held 38 MB of configuration entries in a 39 MB log of 6,800
// entries (its snapshot: 0.75 MB), sent them to every new host and could not
// keep up: hosts did not finish joining in 11 minutes (bench/RESULTS.md).
// Consul never meets this: its clients are not Raft members.
//
// So a host snapshots by bytes as well as by entries: once snapshotLogBytes
// of entries were stored since its last snapshot it takes one, and keeps
// only trailingLogs entries behind it. A joining host then gets a snapshot
// (about the size of the state) and at most snapshotLogBytes of entries.
const (
	// snapshotLogBytes is about a snapshot's size at 1,000 hosts: a joining
	// host is sent no more log than snapshot.
	snapshotLogBytes = 1 << 20
	// trailingLogs is how far behind a follower may fall and still catch up
	// from the log; further behind, it is sent the snapshot (~1 MB at 500
	// hosts, cheaper than replaying thousands of entries). 512 entries are
	// minutes of an idle mesh and some seconds of a busy drain.
	trailingLogs = 512
)

// logBytes counts the bytes of entries stored since the last snapshot that
// it asked for, and says when the next one is due.
type logBytes struct {
	n   atomic.Int64
	due chan struct{} // 1-buffered
}

func newLogBytes() *logBytes { return &logBytes{due: make(chan struct{}, 1)} }

func (c *logBytes) add(ls []*raft.Log) {
	var b int64
	for _, l := range ls {
		b += int64(len(l.Data) + len(l.Extensions))
	}
	if c.n.Add(b) >= snapshotLogBytes {
		select {
		case c.due <- struct{}{}:
		default:
		}
	}
}

// countingLogStore counts the bytes of the entries stored in it.
type countingLogStore struct {
	raft.LogStore
	c *logBytes
}

func (s countingLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s countingLogStore) StoreLogs(ls []*raft.Log) error {
	err := s.LogStore.StoreLogs(ls)
	if err == nil {
		s.c.add(ls)
	}
	return err
}

// snapshotByBytes takes a snapshot whenever snapshotLogBytes of entries were
// stored since the last one it took. Every host runs it, not only the
// leader: a follower's log is what it sends joining hosts once it leads.
func (n *Node) snapshotByBytes() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.logBytes.due:
		}
		n.logBytes.n.Store(0)
		if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			n.log.Warn("raft snapshot after a large log", "err", err)
		}
	}
}
