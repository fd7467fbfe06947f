// Package testcluster runs whole meshes for tests and the demo: N meshd
// nodes in one process on loopback with simulated hypervisors (this file),
// and, in testcluster/lab, real libvirt hosts in network namespaces.
package testcluster

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/migrate/sim"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/pki"
)

// Options shape an in-process cluster.
type Options struct {
	Hosts int
	// VMsPerHost sim VMs are defined on every host (named vm-<host>-<i>).
	VMsPerHost int
	VMMemMiB   uint64 // default 512
	HostMemMiB uint64 // default 16384
	// HostMem, when set, gives host i its own memory size.
	HostMem func(i int) uint64
	// TimeScale speeds up simulated migrations (default 20).
	TimeScale float64
	// MigrationSetup is the simulated time every migration spends before
	// its first byte (sim.Config.Setup; default 0).
	MigrationSetup time.Duration
	MaxVoters      int
	// LeftHostGrace is how long a Left host stays in the state (default:
	// meshd's, an hour).
	LeftHostGrace time.Duration
	// Cluster names each host's cluster; default all "c1".
	Cluster func(i int) string
	// Networks per host; default vmnet untagged and VLAN 100.
	Networks func(i int) []fsm.Network
	// Monitor tunes job monitors; the registry's simulated clock is filled in.
	Monitor migrate.MonitorConfig
	Logger  *slog.Logger
	// GossipKey encrypts the mesh's gossip; default: a fresh random key.
	GossipKey []byte
	// BootstrapExpect, when set, starts every host with --bootstrap-expect
	// N instead of h1 with --bootstrap.
	BootstrapExpect int
	// WrapHypervisor, when set, stands between host i's meshd and its sim
	// host (fault injection: a hypervisor that stops answering).
	WrapHypervisor func(i int, h migrate.Hypervisor) migrate.Hypervisor
	// DevMode runs the mesh without TLS, as meshd --dev does: plain HTTP,
	// plain Raft. By default every cluster runs as production does: its own
	// CA, a host certificate per host, mutual TLS (and a gossip key).
	DevMode bool
	// NoInitialToken starts the hosts without an initial management
	// token: the mesh waits for meshctl acl bootstrap (Client's token is
	// then nothing to it).
	NoInitialToken bool
}

// Cluster is a running in-process mesh.
type Cluster struct {
	t    testing.TB
	opts Options
	base string // data dirs
	Reg  *sim.Registry

	hostMem map[string]uint64 // sim host → memory, for the slot watch

	// CA is the cluster's certificate authority (nil in DevMode); CAFile
	// holds its certificate, for meshctl --cacert.
	CA     *pki.CA
	CAFile string
	// ManagementToken is the secret every host starts with as its initial
	// management token (meshd --initial-management-token-file, in
	// TokenFile); Client sends it (acl.go).
	ManagementToken string
	TokenFile       string

	mu      sync.Mutex
	clients map[string]*api.Client // by API address and caller
	nodes   []*node.Node
	// started counts each host's starts: a host started before joins the
	// others when it comes back, h1 included.
	started []int
	cfgs    []node.Config
	cut     []*atomic.Bool // per host: partitioned from the others
	// per host: only its gossip, or only its Raft, cut (CutGossip, CutRaft)
	gossipCut, raftCut []*atomic.Bool
}

// New starts a cluster: host h1 bootstraps explicitly (as meshd --bootstrap),
// the others join it by gossip; with Options.BootstrapExpect every host
// expects that many and the first by name bootstraps once gossip shows them.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Hosts == 0 {
		opts.Hosts = 3
	}
	if opts.VMMemMiB == 0 {
		opts.VMMemMiB = 512
	}
	if opts.HostMemMiB == 0 {
		opts.HostMemMiB = 16384
	}
	if opts.TimeScale == 0 {
		opts.TimeScale = 20
	}
	if opts.Cluster == nil {
		opts.Cluster = func(int) string { return "c1" }
	}
	if opts.Networks == nil {
		opts.Networks = func(int) []fsm.Network { return []fsm.Network{{Name: "vmnet"}, {Name: "vmnet", VLAN: 100}} }
	}
	if opts.GossipKey == nil {
		key, err := gossip.KeyFromString(gossip.GenerateKey())
		if err != nil {
			t.Fatalf("testcluster: gossip key: %v", err)
		}
		opts.GossipKey = key
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{t: t, opts: opts, Reg: sim.NewRegistry(sim.Config{TimeScale: opts.TimeScale, Setup: opts.MigrationSetup}), hostMem: map[string]uint64{},
		clients: map[string]*api.Client{}}
	t.Cleanup(c.Close)
	c.base = t.TempDir()
	if err := c.newManagementToken(c.base); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	if !opts.DevMode {
		if err := c.newPKI(c.base); err != nil {
			t.Fatalf("testcluster: %v", err)
		}
	}
	for i := 0; i < opts.Hosts; i++ {
		if err := c.add(nil); err != nil {
			t.Fatalf("testcluster: %v", err)
		}
	}
	return c
}

// AddHost starts one more host, configured like the others and joining
// them, after mutate (if not nil) changed its configuration: a host with
// another gossip key, say. It returns the host's index.
func (c *Cluster) AddHost(mutate func(*node.Config)) int {
	c.t.Helper()
	if err := c.add(mutate); err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	return len(c.cfgs) - 1
}

func (c *Cluster) add(mutate func(*node.Config)) error {
	i := len(c.cfgs)
	cfg, err := c.hostConfig(i, c.base)
	if err != nil {
		return err
	}
	cut, gossipCut, raftCut := &atomic.Bool{}, &atomic.Bool{}, &atomic.Bool{}
	cfg.Blocked, cfg.GossipBlocked, cfg.RaftBlocked = cut.Load, gossipCut.Load, raftCut.Load
	if mutate != nil {
		mutate(&cfg)
	}
	c.mu.Lock()
	c.cut = append(c.cut, cut)
	c.gossipCut = append(c.gossipCut, gossipCut)
	c.raftCut = append(c.raftCut, raftCut)
	c.cfgs = append(c.cfgs, cfg)
	c.nodes = append(c.nodes, nil)
	c.started = append(c.started, 0)
	c.mu.Unlock()
	return c.start(i)
}

// hostConfig creates host i's sim hypervisor and VMs, and fixes its ports
// so a restarted node comes back at the same addresses.
func (c *Cluster) hostConfig(i int, base string) (node.Config, error) {
	name := HostName(i)
	mem := c.opts.HostMemMiB
	if c.opts.HostMem != nil {
		mem = c.opts.HostMem(i)
	}
	c.hostMem[name] = mem
	h, err := c.Reg.AddHost(sim.HostSpec{Name: name, CPUModel: "Skylake-Server", CPUFlags: []string{"sse4_2", "avx2", "aes"},
		MemTotalMiB: mem, CPUs: 32})
	if err != nil {
		return node.Config{}, err
	}
	for j := 0; j < c.opts.VMsPerHost; j++ {
		if err := h.Define(sim.VMSpec{Name: fmt.Sprintf("vm-%s-%d", name, j), MemoryMiB: c.opts.VMMemMiB, VCPUs: 1,
			NICs:  []fsm.NIC{{Network: "vmnet"}},
			Disks: []fsm.Disk{{Target: "vda", Source: "/shared/" + name + "-" + strconv.Itoa(j) + ".qcow2", Cache: "none"}}}); err != nil {
			return node.Config{}, err
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return node.Config{}, err
	}
	mon := c.opts.Monitor
	clk := c.Reg.Clock()
	mon.Clock, mon.NewTicker = clk.Now, clk.NewTicker
	var hv migrate.Hypervisor = h
	if c.opts.WrapHypervisor != nil {
		hv = c.opts.WrapHypervisor(i, h)
	}
	cfg := node.Config{
		Name: name, Cluster: c.opts.Cluster(i), DataDir: filepath.Join(base, name),
		BindAddr: "127.0.0.1", GossipPort: ports[0], RaftPort: ports[1], APIPort: ports[2],
		GossipKey: c.opts.GossipKey, DevMode: c.opts.DevMode, Fast: true, MaxVoters: c.opts.MaxVoters, LeftHostGrace: c.opts.LeftHostGrace,
		Hypervisor: hv, HypervisorURI: h.URI(), HypervisorKind: "sim",
		Networks: c.opts.Networks(i), StorageDomains: map[string]string{"shared": "/shared"},
		Monitor: mon, Logger: c.opts.Logger.With("host", name),
		InitialManagementToken: c.initialToken(),
	}
	if c.CA != nil {
		if cfg.TLS, err = c.HostTLS(name); err != nil {
			return node.Config{}, err
		}
	}
	cfg.BootstrapExpect = c.opts.BootstrapExpect
	if i == 0 && c.opts.BootstrapExpect == 0 {
		cfg.Bootstrap = true
	}
	return cfg, nil
}

// HostName is the name of host i (h1, h2, ...).
func HostName(i int) string { return "h" + strconv.Itoa(i+1) }

// start runs host i; every host but a first h1 joins the others' gossip
// addresses (those not running yet are retried).
func (c *Cluster) start(i int) error {
	cfg := c.cfgs[i]
	c.mu.Lock()
	again := c.started[i] > 0
	c.mu.Unlock()
	if i > 0 || again {
		cfg.Join = c.liveGossipAddrs(i)
	}
	n, err := node.New(cfg)
	if err != nil {
		return fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.started[i]++
	c.mu.Unlock()
	byAPIAddr.Store(n.APIAddr(), c)
	return nil
}

// byAPIAddr finds the cluster of a node's API address, so helpers given an
// address alone (meshctl in tests) reach it with the cluster's CA.
var byAPIAddr sync.Map

// clusterAt is the running cluster serving the API at addr, or nil.
func clusterAt(addr string) *Cluster {
	if c, ok := byAPIAddr.Load(addr); ok {
		return c.(*Cluster)
	}
	return nil
}

func (c *Cluster) liveGossipAddrs(except int) []string {
	var out []string
	for j, cfg := range c.cfgs {
		if j != except {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", cfg.GossipPort))
		}
	}
	return out
}

// Node returns host i's node, nil while it is killed.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Nodes returns the running nodes.
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Crash stops host i's meshd as SIGKILL would: no leave, no drain, and
// its hypervisor untouched: the sim host's migration jobs (from it and to
// it) run on and end on their own, as libvirt's do when meshd dies. The
// data dir (Raft log, start journal) stays for Restart.
func (c *Cluster) Crash(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Kill()
	}
}

// Kill stops host i as if the whole host failed: its meshd crashes (see
// Crash), its hypervisor stops answering its peers, and every migration
// stream from and to it breaks at once (a job in pre-copy fails with the
// guest on its source; one in post-copy breaks and waits for a resume).
// Its VMs stay defined, so that Restart brings the host back with them.
func (c *Cluster) Kill(i int) {
	c.Crash(i)
	if h, ok := c.Reg.Host(HostName(i)); ok {
		h.SetDown(true)
		h.BreakMigrations()
	}
}

// Starts returns how many times each migration attempt ("m12#1") was
// started on any host's hypervisor. A fault test asserts that none was
// started twice: a restarted meshd re-attaches, it never starts again.
func (c *Cluster) Starts() map[string]int { return c.Reg.Starts() }

// Restart starts host i again from its data dir at the same addresses
// (after Kill, its hypervisor answers its peers again).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if h, ok := c.Reg.Host(HostName(i)); ok {
		h.SetDown(false)
	}
	if err := c.start(i); err != nil {
		c.t.Fatalf("testcluster: restart: %v", err)
	}
}

// Wipe deletes host i's data dir (its Raft log and snapshots), as a
// replaced disk would; the host must be killed. Restart then starts it empty,
// joining the others.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	if c.Node(i) != nil {
		c.t.Fatalf("testcluster: wipe %s while it runs", c.cfgs[i].Name)
	}
	if err := os.RemoveAll(c.cfgs[i].DataDir); err != nil {
		c.t.Fatalf("testcluster: wipe %s: %v", c.cfgs[i].Name, err)
	}
}

// Partition cuts host i off the gossip and Raft networks of the others (its
// API stays reachable for the test to read it).
func (c *Cluster) Partition(i int) {
	c.cut[i].Store(true)
	c.severAll() // its connections and the peers' to it break
}

// CutGossip drops host i's gossip, in and out, while its Raft and API
// connections flow: the others' failure detector declares it dead though
// it replicates and answers.
func (c *Cluster) CutGossip(i int) { c.gossipCut[i].Store(true) }

// CutRaft cuts host i's Raft (host port) connections, in and out, while
// its gossip flows: the others see it alive but cannot replicate to it.
func (c *Cluster) CutRaft(i int) {
	c.raftCut[i].Store(true)
	c.severAll()
}

// Heal reconnects host i (whichever of Partition, CutGossip and CutRaft
// cut it).
func (c *Cluster) Heal(i int) {
	c.cut[i].Store(false)
	c.gossipCut[i].Store(false)
	c.raftCut[i].Store(false)
}

// severAll breaks every live Raft connection of every running host, as a
// cut does to those that cross it (the others redial at once).
func (c *Cluster) severAll() {
	for _, n := range c.Nodes() {
		n.Sever()
	}
}

// Close stops every node and the simulation.
func (c *Cluster) Close() {
	for i := range c.nodes {
		c.Kill(i)
	}
	c.Reg.Close()
	c.mu.Lock()
	for _, cl := range c.clients {
		cl.Close()
	}
	for _, cfg := range c.cfgs {
		releasePorts(cfg.GossipPort, cfg.RaftPort, cfg.APIPort)
	}
	c.mu.Unlock()
	byAPIAddr.Range(func(addr, v any) bool {
		if v.(*Cluster) == c {
			byAPIAddr.Delete(addr)
		}
		return true
	})
}

// Leader waits for a leader among the running nodes and returns it.
func (c *Cluster) Leader(timeout time.Duration) *node.Node {
	c.t.Helper()
	var leader *node.Node
	c.WaitFor(timeout, "a raft leader", func() bool {
		for _, n := range c.Nodes() {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// WaitFor polls cond until it holds or the deadline passes, then fails the
// test naming what it waited for. Tests wait on conditions, never on sleeps.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	if err := Poll(timeout, 20*time.Millisecond, cond); err != nil {
		c.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Poll calls cond every interval until it returns true or timeout passes.
func Poll(timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %s", timeout)
		}
		time.Sleep(interval)
	}
}
