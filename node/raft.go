package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// openRaft starts Raft on a bolt log in DataDir. It never bootstraps: that
// is explicit (see startBootstrap), and a fresh data dir with nothing to join
// and no bootstrap asked for is refused here, before Raft starts.
func (n *Node) openRaft(ln net.Listener) error {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("raft dir %s: %w", dir, err)
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return fmt.Errorf("raft log %s: %w", dir, err)
	}
	n.boltStore = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLogger(n.log, "raft"))
	if err != nil {
		return fmt.Errorf("raft snapshots %s: %w", dir, err)
	}
	n.stream = newStreamLayer(ln, eitherBlocked(n.cfg.Blocked, n.cfg.RaftBlocked), n.cfg.TLS)
	n.transport = newRaftTransport(n.stream, 3, 5*time.Second, n.log)
	n.timing = timingFor(n.cfg.Fast)
	n.transport.pace = newPacer(n.timing.paceEvery, n.timing.paceGrace)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Name)
	rc.Logger = newHCLogger(n.log, "raft")
	rc.SnapshotThreshold = 4096
	// Fewer trailing entries than Raft's 10,240, and a snapshot by bytes as
	// well (compact.go): a joining host is sent a snapshot and a short log,
	// not every configuration entry of every host that ever joined.
	rc.TrailingLogs = trailingLogs
	// The voters' timeouts; a non-voter lengthens its own (suffrage.go).
	rc.HeartbeatTimeout, rc.ElectionTimeout = n.timing.voterHeartbeat, n.timing.voterElection
	if n.cfg.Fast {
		rc.LeaderLeaseTimeout = 150 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.Logger = hclog.NewNullLogger()
	} else {
		// Sub-second detection of a dead leader: the queue must run again
		// within a few seconds (LAN, as consul's defaults scaled down).
		rc.LeaderLeaseTimeout = 250 * time.Millisecond
	}
	n.leaderNotify = make(chan bool, 8)
	rc.NotifyCh = n.leaderNotify

	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("raft state in %s: %w", dir, err)
	}
	n.hadState = has
	if !has {
		if err := n.refuseWithoutBootstrap(n.cfg.DataDir); err != nil {
			return err
		}
	}
	// The log store kicks the pacer when the leader stores new entries.
	logs := countingLogStore{LogStore: kickLogStore{LogStore: store, p: n.transport.pace}, c: n.logBytes}
	r, err := raft.NewRaft(rc, n.fsm, logs, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft for %s: %w", n.cfg.Name, err)
	}
	n.raft = r
	n.bootIndex, n.bootAt = r.LastIndex(), time.Now()
	return nil
}
