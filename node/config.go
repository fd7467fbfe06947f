package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/pki"
	"github.com/hostmesh/hostmesh/version"
)

// Config is everything one meshd needs. Zero values get the defaults below.
type Config struct {
	Name    string
	Cluster string
	// DataDir holds the Raft log (raft-boltdb) and snapshots.
	DataDir string
	// BindAddr is the management-network IP for gossip, Raft and the API.
	BindAddr string
	// Ports; 0 picks a free port (tests).
	GossipPort, RaftPort, APIPort int
	// MigrationAddr is the migration-network IP peers stream memory and disks to.
	// Empty: the management address (one network for both, as oVirt's default).
	MigrationAddr string
	// Join lists gossip addresses (ip:port) of any members.
	Join []string
	// Bootstrap starts a new single-voter mesh on this host if its data dir
	// holds no Raft state (and no member reached through Join is in a mesh).
	// Give it once, on one host: meshd --bootstrap.
	Bootstrap bool
	// BootstrapExpect N: this host is one of N that start a mesh together.
	// Each waits until gossip shows N hosts expecting N, then the first by
	// name bootstraps Raft with them all as voters. Ignored once the data
	// dir holds Raft state.
	BootstrapExpect int
	// GossipKey encrypts gossip; required unless DevMode. Once the data dir
	// holds a gossip keyring (DataDir/gossip.keyring, written at the first
	// start and after every rotation) that keyring is used instead.
	GossipKey []byte
	// TLS is this host's certificate and the mesh CA: the API serves HTTPS,
	// Raft and the host-only routes (internal apply, forwarding, sim peers)
	// are mutual TLS between host certificates. Required unless DevMode.
	TLS *pki.HostTLS
	// InitialManagementToken, when set, is the secret of a management
	// (admin) token the leader creates when the mesh has no ACL table yet,
	// as Consul's initial_management: demos and test harnesses start with
	// a known token instead of running `meshctl acl bootstrap` (acl.go).
	InitialManagementToken string
	// DevMode lets meshd run without TLS and without a gossip key (tests
	// and trying it out); whatever is left insecure is logged loudly.
	DevMode bool
	// MaxVoters bounds Raft voters; further hosts replicate as non-voters.
	MaxVoters int
	// Fast shortens Raft and gossip timeouts for tests on loopback.
	Fast bool

	Hypervisor migrate.Hypervisor
	// HypervisorURI is how peers' hypervisors reach ours; "{host}" in it
	// is replaced by this node's host port address (the sim hypervisor's
	// HTTP peer).
	HypervisorURI string
	// HTTPHandlers are mounted on the host port under their path prefix,
	// for the mesh's hosts only (the sim hypervisor's peer endpoint,
	// "/v1/sim").
	HTTPHandlers   map[string]http.Handler
	HypervisorKind string // "libvirt" or "sim"
	// Networks and StorageDomains are what this host offers; StorageDomains
	// maps a domain name to the directory its images live under, so disk
	// paths can be mapped to domains.
	Networks       []fsm.Network
	StorageDomains map[string]string
	// UnsafeMigration tells libvirt to skip its own shared-storage and cache
	// checks, which the mesh runs itself (see migrate checks): needed when a
	// storage domain is a plain directory libvirt cannot prove is shared.
	UnsafeMigration bool

	// HostFacts says where the networks and storage domains this host
	// gossips come from: FactsMerge (the default: the configured ones and
	// those discovered on the host), FactsDiscovered (only those), or
	// FactsConfigured (no discovery). A hypervisor that cannot report its
	// host's (the sim) keeps the configured ones.
	HostFacts string
	// FactsInterval is how often the host's facts are discovered (default
	// 10 s): a VLAN added on the host is gossiped within it.
	FactsInterval time.Duration

	// InventoryInterval is how often the hypervisor is read.
	InventoryInterval time.Duration
	// ReconcileInterval is how often the leader reconciles fully.
	ReconcileInterval time.Duration
	// BalanceInterval is how often the leader runs a balancing pass of
	// the clusters whose balancing is on (default a minute; 500 ms Fast).
	BalanceInterval time.Duration
	// Monitor tunes the job monitor (sample interval, timeouts).
	Monitor migrate.MonitorConfig
	// SettleAfter is the settle bound's first part: the leader settles a
	// Running migration from the hosts' hypervisors when its source sent
	// no progress report for this long (or is Down). Sources report every
	// Monitor.Interval while a job runs and heartbeat while they settle,
	// so the default is 3 reports plus 10 s for commits and a busy host:
	// 3 × Monitor.Interval + 10 s (11.5 s with the default interval; Fast
	// meshes 3 × interval + 2 s).
	SettleAfter time.Duration
	// SettleRetry is how often an unsettled migration's hypervisors are
	// read again, and a broken post-copy's resume tried again. Default 2 s
	// (Fast: 200 ms).
	SettleRetry time.Duration
	// PeerTimeout bounds one read of a peer's hypervisor. Default 5 s.
	PeerTimeout time.Duration
	// DrainTimeout bounds the drain a graceful leave runs first.
	DrainTimeout time.Duration
	// MaxBlockingReads caps the API's blocking reads waiting at once
	// (0: 256); past it a blocking read gets 429 with Retry-After.
	MaxBlockingReads int
	// LeftHostGrace is how long a host that left the mesh stays in the
	// state before the leader removes it (once it runs no VMs): long
	// enough to read why it left and for a restarted host to come back
	// under its name, short enough that hosts replaced over the years do
	// not pile up. Default 1 hour.
	LeftHostGrace time.Duration
	Version       string
	Logger        *slog.Logger
	// Blocked, when set, partitions this host (gossip and Raft) while it
	// returns true. Tests only.
	Blocked func() bool
	// GossipBlocked and RaftBlocked, when set, cut only this host's gossip,
	// or only its Raft (host port) connections, while they return true:
	// the fault matrix's lost gossip with Raft still flowing, and the
	// reverse. Tests only.
	GossipBlocked, RaftBlocked func() bool
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		return fmt.Errorf("node config: name is required")
	}
	if c.Cluster == "" {
		c.Cluster = "default"
	}
	if c.DataDir == "" {
		return fmt.Errorf("node %s config: data dir is required", c.Name)
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	if c.MigrationAddr == "" {
		c.MigrationAddr = c.BindAddr
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = 5
	}
	if err := c.checkBootstrapConfig(); err != nil {
		return err
	}
	if err := c.checkTLSConfig(); err != nil {
		return err
	}
	if c.Hypervisor == nil {
		return fmt.Errorf("node %s config: a hypervisor is required", c.Name)
	}
	switch c.HostFacts {
	case "":
		c.HostFacts = FactsMerge
	case FactsMerge, FactsDiscovered, FactsConfigured:
	default:
		return fmt.Errorf("node %s config: host facts %q: want %s, %s or %s", c.Name, c.HostFacts, FactsMerge, FactsDiscovered, FactsConfigured)
	}
	if c.FactsInterval <= 0 {
		c.FactsInterval = 10 * time.Second
	}
	if c.InventoryInterval == 0 {
		c.InventoryInterval = 2 * time.Second
		if c.Fast {
			c.InventoryInterval = 200 * time.Millisecond
		}
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = 2 * time.Second
		if c.Fast {
			c.ReconcileInterval = 200 * time.Millisecond
		}
	}
	if c.BalanceInterval == 0 {
		c.BalanceInterval = time.Minute
		if c.Fast {
			c.BalanceInterval = 500 * time.Millisecond
		}
	}
	if c.LeftHostGrace == 0 {
		c.LeftHostGrace = time.Hour
	}
	interval := c.Monitor.Interval
	if interval <= 0 {
		interval = migrate.DefaultMonitorInterval
	}
	if c.SettleAfter == 0 {
		c.SettleAfter = 3*interval + 10*time.Second
		if c.Fast {
			c.SettleAfter = 3*interval + 2*time.Second
		}
	}
	if c.SettleRetry == 0 {
		c.SettleRetry = 2 * time.Second
		if c.Fast {
			c.SettleRetry = 200 * time.Millisecond
		}
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 5 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Minute
	}
	if c.Version == "" {
		c.Version = Version
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("node", c.Name)
	return nil
}

// Version is the meshd version gossiped to peers: the build's (package
// version).
var Version = version.Get().Version

// checkTLSConfig refuses to run without TLS unless DevMode asks for it, and
// a certificate issued for another host.
func (c *Config) checkTLSConfig() error {
	switch {
	case c.TLS == nil && !c.DevMode:
		return fmt.Errorf("node %s config: %w", c.Name, ErrNoTLS)
	case c.TLS != nil && c.TLS.Name != c.Name:
		return fmt.Errorf("node %s config: the host certificate is issued to host %q: create one for %s (meshctl tls cert create --host %s)",
			c.Name, c.TLS.Name, c.Name, c.Name)
	}
	return nil
}

// ErrNoTLS says how to give meshd its certificates, or to run insecure.
var ErrNoTLS = errors.New("meshd needs TLS: --ca-file, --cert-file and --key-file " +
	"(create them with: meshctl tls ca create; meshctl tls cert create --host NAME --ip MGMT-IP), " +
	"or --dev to run with plain HTTP, plain Raft and unencrypted gossip (tests only)")

// insecure lists what this configuration leaves unprotected, for the
// warning meshd logs at start.
func (c *Config) insecure() []string {
	var out []string
	if c.TLS == nil {
		out = append(out, "the API is plain HTTP",
			"Raft is plain TCP and accepts any peer, and so do the host-only routes on the host port")
	}
	if len(c.GossipKey) == 0 {
		out = append(out, "gossip is unencrypted and unauthenticated")
	}
	return out
}

// eitherBlocked is a partition switch that is on while a or b is (nil when
// both are nil: no switch, as in production).
func eitherBlocked(a, b func() bool) func() bool {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func() bool { return a() || b() }
}
