package node

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
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
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		return fmt.Errorf("raft snapshots %s: %w", dir, err)
	}
	n.stream = newStreamLayer(ln, n.cfg.Blocked)
	n.transport = newRaftTransport(n.stream, 3, 5*time.Second)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Name)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	rc.SnapshotThreshold = 4096
	if n.cfg.Fast {
		rc.HeartbeatTimeout = 300 * time.Millisecond
		rc.ElectionTimeout = 300 * time.Millisecond
		rc.LeaderLeaseTimeout = 150 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.Logger = hclog.NewNullLogger()
	} else {
		// Sub-second detection of a dead leader: the queue must run again
		// within a few seconds (LAN, as consul's defaults scaled down).
		rc.HeartbeatTimeout = 500 * time.Millisecond
		rc.ElectionTimeout = 500 * time.Millisecond
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
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft for %s: %w", n.cfg.Name, err)
	}
	n.raft = r
	return nil
}

// streamLayer is raft's TCP stream layer over a listener we opened ourselves
// (so port 0 works and the address is known before Raft starts). With a
// blocked switch (tests only) it refuses and drops every connection while
// the host is partitioned.
type streamLayer struct {
	net.Listener
	blocked func() bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newStreamLayer(ln net.Listener, blocked func() bool) *streamLayer {
	return &streamLayer{Listener: ln, blocked: blocked, conns: map[net.Conn]struct{}{}}
}

func (s *streamLayer) cut() bool { return s.blocked != nil && s.blocked() }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.cut() {
		return nil, fmt.Errorf("dial %s: network cut (partition)", addr)
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c), nil
}

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if s.cut() {
			c.Close()
			continue
		}
		return s.track(c), nil
	}
}

// track remembers live connections so a partition can sever them.
func (s *streamLayer) track(c net.Conn) net.Conn {
	if s.blocked == nil {
		return c
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return &trackedConn{Conn: c, s: s}
}

// sever closes every live connection: called when a partition starts.
func (s *streamLayer) sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = map[net.Conn]struct{}{}
}

type trackedConn struct {
	net.Conn
	s *streamLayer
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c.Conn)
	c.s.mu.Unlock()
	return c.Conn.Close()
}
