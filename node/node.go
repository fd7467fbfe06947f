// Package node is meshd: one host's agent. It joins gossip, replicates the
// state through Raft, serves the API, reports its hypervisor's inventory and,
// when it is the source of a granted migration, runs the transfer itself.
// When it is the Raft leader it also reconciles membership and schedules.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/migrate"
)

// Node is one running meshd.
type Node struct {
	cfg Config
	// cpuCache holds this host's CPU verdicts (cpu.go).
	cpuCache cpuCache
	log      *slog.Logger
	fsm      *fsm.FSM

	raft *raft.Raft
	// bootIndex is the last index of the Raft log on disk when this node
	// started, bootAt when; see caughtUp.
	bootIndex    uint64
	bootAt       time.Time
	boltStore    *raftboltdb.BoltStore
	logBytes     *logBytes // entries' bytes since the last snapshot (compact.go)
	transport    *raftTransport
	timing       raftTiming // Raft timeouts and pacing by suffrage (suffrage.go)
	stream       *streamLayer
	leaderNotify chan bool
	// hadState: the data dir held Raft state at start (bootstrap flags are
	// then ignored).
	hadState bool
	// removalHeld: the leader holds back removing a failed peer that
	// answers Raft (removeFailedPeer); it logs when that starts, not on
	// every pass.
	removalHeld atomic.Bool

	gossip *gossip.Agent
	api    *http.Server
	apiLn  net.Listener
	// initialHash is the SHA-256 of Config.InitialManagementToken (acl.go).
	initialHash string
	// hostAPI serves the host-only routes on the host port (hostapi.go).
	hostAPI *http.Server
	// peers are API clients of other hosts (forwarding to the leader).
	peers peerClients

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	jobsMu sync.Mutex
	jobs   map[string]*runningJob // jobKey → local job, on the source
	// journal records the attempts this host started on its hypervisor.
	journal startJournal
	// detach is closed when this meshd stops: its job monitors return and
	// leave the jobs to the hypervisor (the next meshd re-attaches).
	detach chan struct{}
	// settle is the leader's bookkeeping of running migrations' reports.
	settle settleWatch
	// balancer is the leader's bookkeeping of balancing passes.
	balancer balanceState

	factsMu sync.Mutex
	facts   fsm.HostFacts
	res     resources // declared networks and storage domains

	metrics *nodeMetrics
	inv     invHealth

	joined joinState

	closeOnce sync.Once
	left      chan struct{}
	leftOnce  sync.Once
}

// New starts a meshd: listeners first (so ports are known), then Raft,
// gossip, the API and the background loops.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := fsm.New()
	f.SetLogger(cfg.Logger)
	f.SetGrantCheck(migrate.GrantCheck)
	n := &Node{cfg: cfg, log: cfg.Logger, fsm: f, ctx: ctx, cancel: cancel, logBytes: newLogBytes(),
		jobs: map[string]*runningJob{}, left: make(chan struct{}), detach: make(chan struct{}),
		peers: peerClients{self: cfg.Name, tls: cfg.TLS}}
	n.res.init(cfg.Networks, cfg.StorageDomains, cfg.HostFacts)
	n.metrics = n.newNodeMetrics()
	if cfg.InitialManagementToken != "" {
		if err := CheckInitialToken(cfg.InitialManagementToken); err != nil {
			cancel()
			return nil, fmt.Errorf("start node %s: %w", cfg.Name, err)
		}
		n.initialHash = HashSecret(cfg.InitialManagementToken)
	}
	if err := n.start(); err != nil {
		n.Kill()
		return nil, fmt.Errorf("start node %s: %w", cfg.Name, err)
	}
	return n, nil
}

func (n *Node) start() error {
	if weak := n.cfg.insecure(); len(weak) > 0 {
		n.log.Warn("INSECURE: meshd runs in --dev mode: anyone who reaches this host's management address can read and change the mesh's state; never run it so in production",
			"insecure", weak)
	}
	j, err := newStartJournal(n.cfg.DataDir)
	if err != nil {
		return err
	}
	n.journal = j
	raftLn, err := net.Listen("tcp", net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.RaftPort)))
	if err != nil {
		return fmt.Errorf("raft listener: %w", err)
	}
	apiLn, err := net.Listen("tcp", net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.APIPort)))
	if err != nil {
		raftLn.Close()
		return fmt.Errorf("api listener: %w", err)
	}
	n.apiLn = apiLn
	if err := n.openRaft(raftLn); err != nil {
		return err
	}
	n.observeLeaders()
	facts, err := n.readFacts(n.ctx)
	if err != nil {
		return err
	}
	n.inv.ok()
	n.facts = facts
	g, err := gossip.Start(gossip.Config{
		Name: n.cfg.Name, BindAddr: n.cfg.BindAddr, BindPort: n.cfg.GossipPort,
		Key: n.cfg.GossipKey, KeyringFile: filepath.Join(n.cfg.DataDir, gossip.KeyringFileName),
		DevMode: n.cfg.DevMode, Fast: n.cfg.Fast, Blocked: eitherBlocked(n.cfg.Blocked, n.cfg.GossipBlocked), Logger: n.log,
		Boot: gossip.Boot{Expect: n.cfg.BootstrapExpect, InMesh: n.hadState},
	}, facts)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.gossip = g
	if len(n.cfg.Join) > 0 {
		// Hosts boot in any order: a failed join is retried by the mesh
		// watch instead of failing a host that came up first.
		n.join()
	}
	n.go_(n.meshWatch)
	if err := n.startBootstrap(); err != nil {
		return err
	}
	n.serveHostAPI()
	n.serveAPI(apiLn)
	n.go_(n.leaderLoop)
	n.go_(n.watchSuffrage)
	n.go_(n.snapshotByBytes)
	n.go_(n.inventoryLoop)
	if src, ok := n.cfg.Hypervisor.(FactsSource); ok && n.cfg.HostFacts != FactsConfigured {
		n.go_(func() { n.factsLoop(src) })
	}
	n.go_(n.executorLoop)
	return nil
}

func (n *Node) go_(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// Name is the host name.
func (n *Node) Name() string { return n.cfg.Name }

// APIAddr is host:port of the HTTP API.
func (n *Node) APIAddr() string { return n.apiLn.Addr().String() }

// RaftAddr is host:port of the host port: Raft and the host-only routes.
func (n *Node) RaftAddr() string { return string(n.transport.LocalAddr()) }

// GossipAddr is ip:port of memberlist.
func (n *Node) GossipAddr() string { return n.gossip.Addr() }

// FSM exposes the local replica (read-only use).
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node is the Raft leader.
func (n *Node) IsLeader() bool { return n.raft != nil && n.raft.State() == raft.Leader }

// Raft exposes the Raft instance for status and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Gossip exposes the gossip agent.
func (n *Node) Gossip() *gossip.Agent { return n.gossip }

// Sever drops the live Raft connections; a test calls it when it cuts the
// host off (new connections are refused through Config.Blocked).
func (n *Node) Sever() { n.stream.sever() }

// Left is closed once a leave asked through the API has finished, so the
// daemon can exit.
func (n *Node) Left() <-chan struct{} { return n.left }

// Kill stops the node abruptly, as a crash would: no leave, no drain, and
// its migration jobs left running on the hypervisor, which owns them (the
// restarted meshd re-attaches, or the leader settles them). The data dir
// keeps the Raft log and the start journal so the node can be restarted
// from it.
func (n *Node) Kill() {
	n.closeOnce.Do(func() {
		close(n.detach)
		n.cancel()
		if n.api != nil {
			_ = n.api.Close()
		} else if n.apiLn != nil {
			_ = n.apiLn.Close()
		}
		if n.hostAPI != nil {
			_ = n.hostAPI.Close()
		}
		if n.gossip != nil {
			_ = n.gossip.Shutdown()
		}
		if n.transport != nil && n.transport.pace != nil {
			n.transport.pace.stop() // Raft's shutdown waits for its replication goroutines
		}
		if n.raft != nil {
			_ = n.raft.Shutdown().Error()
		}
		if n.transport != nil {
			_ = n.transport.Close()
		}
		n.wg.Wait()
		n.peers.close()
		if n.boltStore != nil {
			_ = n.boltStore.Close()
		}
	})
}

// ErrLeaveTimeout is returned when a leave's drain did not finish in time.
var ErrLeaveTimeout = errors.New("drain before leave did not finish in time")
