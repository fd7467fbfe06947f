package node

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/pki"
)

// Replica is a Raft non-voter without the rest of meshd: hostmesh's own
// transport (mutual TLS, the host port's ALPN), hashicorp/raft with a
// non-voter's timeouts, an in-memory log of the latest entries and an FSM
// the caller gives. The control-plane bench's fleet (bench/cmd/ctlplane,
// -phases fleet) runs hundreds of them in one process, each beside a gossip
// agent, so that a real meshd leader replicates to 1,000 hosts on a machine
// that could not run 1,000 meshd (issue 15's model). meshd itself never
// uses it: a host's replica is the full FSM on a bolt log (openRaft).
type Replica struct {
	Name string
	// Addr is the host port (Raft) to gossip as the host's RaftAddr.
	Addr   string
	raft   *raft.Raft
	tr     *raftTransport
	stream *streamLayer
}

// ReplicaConfig says who a Replica is.
type ReplicaConfig struct {
	Name string
	// Bind is the IP to listen on (port chosen by the kernel).
	Bind string
	// TLS is the host's certificate (nil: plain TCP, as meshd --dev).
	TLS *pki.HostTLS
	// FSM applies the committed entries; it may discard them.
	FSM raft.FSM
}

// StartReplica listens and starts Raft; the leader adds it as a non-voter
// when its gossip agent announces Addr.
func StartReplica(cfg ReplicaConfig) (*Replica, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, "0"))
	if err != nil {
		return nil, fmt.Errorf("replica %s: listen: %w", cfg.Name, err)
	}
	stream := newStreamLayer(ln, nil, cfg.TLS)
	tm := timingFor(false)
	tr := newRaftTransport(stream, 3, tm.paceEvery*5, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	rc.Logger = hclog.NewNullLogger()
	rc.SnapshotThreshold = 4096
	// A non-voter's timeouts, as watchSuffrage gives a meshd non-voter.
	rc.HeartbeatTimeout, rc.ElectionTimeout = tm.nonvoterTimeout, tm.nonvoterTimeout
	rc.LeaderLeaseTimeout = tm.voterHeartbeat
	logs := newTailLogStore(replicaLogTail)
	// Raft takes a follower's configuration from the append that carries
	// it; the log's copy is read back only for its term, or by an FSM that
	// keeps configurations. Each lists every server: kept whole, 256 of
	// them per replica made the fleet's memory grow with hosts² (5 GB at
	// 325 hosts).
	_, keeps := cfg.FSM.(raft.ConfigurationStore)
	logs.dropConfigData = !keeps
	r, err := raft.NewRaft(rc, cfg.FSM, logs, raft.NewInmemStore(), &discardSnapshots{}, tr)
	if err != nil {
		_ = tr.Close()
		return nil, fmt.Errorf("replica %s: raft: %w", cfg.Name, err)
	}
	return &Replica{Name: cfg.Name, Addr: ln.Addr().String(), raft: r, tr: tr, stream: stream}, nil
}

// AppliedIndex is the last entry applied to the replica's FSM.
func (r *Replica) AppliedIndex() uint64 { return r.raft.AppliedIndex() }

// Leader is the leader this replica follows ("" when it knows none).
func (r *Replica) Leader() string {
	_, id := r.raft.LeaderWithID()
	return string(id)
}

// Close stops Raft and the transport.
func (r *Replica) Close() error {
	err := r.raft.Shutdown().Error()
	if cerr := r.tr.Close(); err == nil {
		err = cerr
	}
	_ = r.stream.Close()
	return err
}

// replicaLogTail is how many entries a Replica keeps: a follower reads
// back only the entry before an append (its consistency check), and the
// latest on a restart it never makes.
const replicaLogTail = 256

// tailLogStore is raft.InmemStore's log half keeping only the latest n
// entries, so hundreds of replicas in one process do not each hold the
// whole log.
type tailLogStore struct {
	mu sync.Mutex
	// dropConfigData keeps a configuration entry without its data (the
	// server list): see StartReplica.
	dropConfigData bool
	n              uint64
	first          uint64
	last           uint64
	logs           map[uint64]*raft.Log
}

func newTailLogStore(n uint64) *tailLogStore {
	return &tailLogStore{n: n, logs: map[uint64]*raft.Log{}}
}

func (s *tailLogStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

func (s *tailLogStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

func (s *tailLogStore) GetLog(index uint64, l *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.logs[index]
	if !ok {
		return raft.ErrLogNotFound
	}
	*l = *e
	return nil
}

func (s *tailLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *tailLogStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		c := *l
		if s.dropConfigData && c.Type == raft.LogConfiguration {
			c.Data = nil
		}
		s.logs[l.Index] = &c
		if s.first == 0 {
			s.first = l.Index
		}
		if l.Index > s.last {
			s.last = l.Index
		}
	}
	for s.last-s.first >= s.n {
		delete(s.logs, s.first)
		s.first++
	}
	return nil
}

func (s *tailLogStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := min; i <= max; i++ {
		delete(s.logs, i)
	}
	if min <= s.first {
		s.first = max + 1
	}
	if max >= s.last {
		s.last = min - 1
	}
	if s.first > s.last {
		s.first, s.last = 0, 0
	}
	return nil
}

// discardSnapshots is a snapshot store for an FSM that keeps nothing: a
// snapshot the leader installs is read to its end and dropped, and opening
// it gives the FSM's Restore an empty stream.
type discardSnapshots struct {
	mu   sync.Mutex
	meta *raft.SnapshotMeta
}

func (d *discardSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	meta := &raft.SnapshotMeta{Version: version, ID: fmt.Sprintf("%d-%d", term, index), Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex}
	return &discardSink{d: d, meta: meta}, nil
}

func (d *discardSnapshots) List() ([]*raft.SnapshotMeta, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta == nil {
		return nil, nil
	}
	return []*raft.SnapshotMeta{d.meta}, nil
}

func (d *discardSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta == nil || d.meta.ID != id {
		return nil, nil, fmt.Errorf("snapshot %s: not found", id)
	}
	m := *d.meta
	return &m, io.NopCloser(eofReader{}), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type discardSink struct {
	d    *discardSnapshots
	meta *raft.SnapshotMeta
}

func (s *discardSink) Write(p []byte) (int, error) { s.meta.Size += int64(len(p)); return len(p), nil }
func (s *discardSink) Close() error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.meta = s.meta
	return nil
}
func (s *discardSink) ID() string    { return s.meta.ID }
func (s *discardSink) Cancel() error { return nil }
