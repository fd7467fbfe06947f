package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hostmesh/hostmesh/fsm"
)

// ErrShutdown is returned by calls that need the network after Shutdown.
var ErrShutdown = errors.New("gossip agent is shut down")

// eventBuffer is the capacity of the Events channel. Callbacks run inside
// memberlist's locks and must never block, so when a consumer falls this far
// behind further events are dropped and counted (see Agent.Dropped);
// consumers reconcile from Members() periodically to recover.
const eventBuffer = 1024

// Agent is one host's membership in the mesh: it publishes the host's facts
// and keeps every other host's current.
type Agent struct {
	name   string
	cfg    Config
	log    *slog.Logger
	t      timings
	ml     atomic.Pointer[memberlist.Memberlist]
	queue  *memberlist.TransmitLimitedQueue
	alive  atomic.Int32
	kick   chan struct{} // asks the repair loop to republish metadata now
	stop   chan struct{}
	events chan Event

	dropped  atomic.Uint64
	pulls    atomic.Uint64 // pull requests sent, for tests and benchmarks
	rejected atomic.Uint64 // invalid input dropped
	disowned atomic.Uint64 // records their owner does not claim, dropped
	pruned   atomic.Uint64 // entries of vanished hosts removed

	// warnMu rate-limits the warnings about rejected input.
	warnMu     sync.Mutex
	lastWarn   time.Time
	suppressed int

	// mu guards the member table and the fields below it. It is taken inside
	// memberlist callbacks (which hold memberlist's own locks), so it is
	// never held while calling into memberlist.
	mu            sync.Mutex
	members       map[string]*entry
	selfMsg       []byte // own record encoded for gossip
	selfBig       bool   // own record too big for UDP gossip
	metaPublished uint64 // version last handed to memberlist as metadata
	boot          Boot   // own bootstrap state, advertised in metadata
	bootPublished bool   // boot is what memberlist last sent
	closed        bool   // shut down: emit no more events
	// addr is the bound gossip ip:port. It is known only after memberlist
	// started, when peers that remember this address may already be
	// talking to it, hence under mu.
	addr string

	// keyMu serialises keyring changes; keys mirrors keyring's keys
	// (primary first) as persisted. keyring is nil without encryption.
	keyMu   sync.Mutex
	keyring *memberlist.Keyring
	keys    [][]byte

	// lifeMu serialises Leave and Shutdown: memberlist panics on a leave
	// after shutdown.
	lifeMu sync.Mutex
	// goMu orders background goroutines against Shutdown's wait.
	goMu     sync.Mutex
	stopped  bool
	wg       sync.WaitGroup
	shutOnce sync.Once
}

// Start binds the gossip sockets and starts publishing facts as version 1.
// It does not contact anyone: call Join. facts.Name must be empty (it is
// filled in) or equal cfg.Name.
func Start(cfg Config, facts fsm.HostFacts) (*Agent, error) {
	if cfg.Name == "" {
		return nil, errors.New("gossip: config has no host name")
	}
	keys, fromFile, err := cfg.startKeys()
	if err != nil {
		return nil, err
	}
	if facts.Name == "" {
		facts.Name = cfg.Name
	}
	if facts.Name != cfg.Name {
		return nil, fmt.Errorf("gossip agent %q: facts are for host %q", cfg.Name, facts.Name)
	}
	// Peers would refuse invalid facts: say so here, where it can be fixed.
	if err := validateFacts(facts); err != nil {
		return nil, fmt.Errorf("gossip agent %q: own facts: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = discard
	}
	a := &Agent{
		name:    cfg.Name,
		cfg:     cfg,
		log:     log.With("component", "gossip"),
		t:       cfg.timings(),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		events:  make(chan Event, eventBuffer),
		members: map[string]*entry{},
		boot:    cfg.Boot,
	}
	self := a.entryLocked(cfg.Name)
	self.boot = cfg.Boot
	self.rec = record{Name: cfg.Name, Version: 1, Facts: cloneFacts(facts)}
	self.have = true
	if err := a.encodeSelfLocked(); err != nil {
		return nil, err
	}

	mc, err := cfg.memberlistConfig(keys)
	if err != nil {
		return nil, err
	}
	a.keyring, a.keys = mc.Keyring, keys
	a.logKeys(keys, fromFile)
	a.queue = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if n := int(a.alive.Load()); n > 1 {
				return n
			}
			return 1
		},
		RetransmitMult: mc.RetransmitMult,
	}
	mc.Delegate = &delegate{a: a}
	mc.Events = &eventHandler{a: a}
	if cfg.Blocked != nil {
		t, err := newCutTransport(mc, cfg.Blocked)
		if err != nil {
			return nil, fmt.Errorf("gossip agent %q: %w", cfg.Name, err)
		}
		mc.Transport = t
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip agent %q: start memberlist on %s:%d: %w", cfg.Name, mc.BindAddr, cfg.BindPort, err)
	}
	a.ml.Store(ml)
	addr := ml.LocalNode().Address()
	a.mu.Lock()
	a.addr = addr
	a.mu.Unlock()

	a.goBackground(a.repairLoop)
	return a, nil
}

// logKeys says where the keys came from, and warns when the configured key
// is not the one in use because a persisted keyring won.
func (a *Agent) logKeys(keys [][]byte, fromFile bool) {
	switch {
	case len(keys) == 0:
		a.log.Warn("gossip is not encrypted (dev mode): anyone on the network can join and inject host facts")
	case fromFile:
		a.log.Info("gossip keyring loaded; it wins over the configured key", "file", a.cfg.KeyringFile,
			"keys", describeKeys(keys))
		if len(a.cfg.Key) > 0 && !bytes.Equal(a.cfg.Key, keys[0]) {
			a.log.Warn("the configured gossip key is not the keyring's primary key: the persisted keyring is used",
				"configured", KeyFingerprint(a.cfg.Key), "primary", KeyFingerprint(keys[0]), "file", a.cfg.KeyringFile)
		}
	default:
		a.log.Info("gossip keyring created from the configured key", "file", a.cfg.KeyringFile,
			"key", KeyFingerprint(keys[0]))
	}
}

// Join contacts the given gossip addresses (ip:port) and merges state with
// them. It returns how many it reached; an error means none were.
func (a *Agent) Join(addrs []string) (int, error) {
	if a.isStopped() {
		return 0, fmt.Errorf("gossip agent %q: join: %w", a.name, ErrShutdown)
	}
	n, err := a.ml.Load().Join(addrs)
	if err != nil {
		return n, fmt.Errorf("gossip agent %q: join %v: %w", a.name, addrs, err)
	}
	// The push/pull gave the contacted hosts our record; gossip it so the
	// rest of the mesh gets it along with our alive message instead of
	// pulling it.
	a.mu.Lock()
	msg, big := a.selfMsg, a.selfBig
	a.mu.Unlock()
	if !big {
		a.queue.QueueBroadcast(&factsBroadcast{host: a.name, msg: msg})
	}
	return n, nil
}

// Update publishes new facts for this host: the version goes up by one and
// the record is gossiped. Facts equal to the current ones change nothing, so
// callers may refresh on a timer. facts.Name is forced to the agent's name.
func (a *Agent) Update(facts fsm.HostFacts) {
	facts.Name = a.name
	if err := validateFacts(facts); err != nil {
		// Peers would drop the record: keep publishing the last valid facts.
		a.log.Error("own facts are invalid, not published", "err", err)
		return
	}
	a.mu.Lock()
	self := a.members[a.name]
	if sameFacts(self.rec.Facts, facts) {
		a.mu.Unlock()
		return
	}
	if self.rec.Version >= MaxVersion {
		a.mu.Unlock()
		a.log.Error("facts version at its maximum, not published", "version", self.rec.Version)
		return
	}
	self.rec.Version++
	self.rec.Facts = cloneFacts(facts)
	err := a.encodeSelfLocked()
	if self.announced {
		a.emitLocked(EventUpdate, self)
	}
	msg, big := a.selfMsg, a.selfBig
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot gossip facts", "error", err)
		return
	}
	if !big {
		a.queue.QueueBroadcast(&factsBroadcast{host: a.name, msg: msg})
	}
	a.kickMeta()
}

// SetBoot changes what this host advertises about its Raft membership (see
// Boot) and republishes its metadata at once.
func (a *Agent) SetBoot(b Boot) {
	a.mu.Lock()
	changed := a.boot != b
	a.boot = b
	a.members[a.name].boot = b
	if changed {
		a.bootPublished = false
	}
	a.mu.Unlock()
	if changed {
		a.kickMeta()
	}
}

// Members returns every host this agent has seen, itself included, sorted
// by name. Dead and left hosts keep their last facts.
func (a *Agent) Members() []Member {
	a.mu.Lock()
	out := make([]Member, 0, len(a.members))
	for _, e := range a.members {
		if e.seen {
			out = append(out, e.member())
		}
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AlivePeers counts the other hosts this agent sees alive. Every host asks
// it every 2 s (meshd's rejoin watch): Members would copy every host's
// facts to count them, about 1 MB of garbage a call per host at 200 hosts.
func (a *Agent) AlivePeers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := 0
	for _, e := range a.members {
		if e.seen && e.name != a.name && e.status == StatusAlive {
			c++
		}
	}
	return c
}

// Member returns one host as this agent sees it.
func (a *Agent) Member(name string) (Member, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.members[name]
	if !ok || !e.seen {
		return Member{}, false
	}
	return e.member(), true
}

// Events delivers membership changes. The channel is buffered and never
// blocks gossip: if it is full, events are dropped and counted by Dropped,
// so consumers must also reconcile from Members() periodically. It is never
// closed, because a closed channel in a consumer's select would spin
// (receiving zero Events) during shutdown; no events are sent after
// Shutdown, so select on your own stop signal too.
func (a *Agent) Events() <-chan Event { return a.events }

// Dropped counts events lost because the Events channel was full.
func (a *Agent) Dropped() uint64 { return a.dropped.Load() }

// Stats are the agent's counters of refused input and pruned entries.
type Stats struct {
	// Rejected counts records, pull requests and state messages that broke
	// the validation rules (see ErrInvalid), dropped unread.
	Rejected uint64
	// Disowned counts records far ahead of what their owner advertises
	// (see maxLead): refused, or discarded when held.
	Disowned uint64
	// Pruned counts entries of hosts that vanished, removed from the table.
	Pruned uint64
	// EventsDropped is Dropped.
	EventsDropped uint64
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{Rejected: a.rejected.Load(), Disowned: a.disowned.Load(), Pruned: a.pruned.Load(),
		EventsDropped: a.dropped.Load()}
}

// reject counts refused input and warns, at most once every 10 s (with the
// number of refusals not logged since), so a flood of junk cannot flood the
// log too.
func (a *Agent) reject(counter *atomic.Uint64, err error) {
	counter.Add(1)
	a.warnMu.Lock()
	now := time.Now()
	if !a.lastWarn.IsZero() && now.Sub(a.lastWarn) < 10*time.Second {
		a.suppressed++
		a.warnMu.Unlock()
		return
	}
	n := a.suppressed
	a.lastWarn, a.suppressed = now, 0
	a.warnMu.Unlock()
	a.log.Warn("gossip input refused", "err", err, "refused_since_last_warning", n)
}

// Addr is the bound gossip address, ip:port (useful with BindPort 0).
func (a *Agent) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Name is this host's name in the mesh.
func (a *Agent) Name() string { return a.name }

// Leave tells the mesh this host is going away on purpose, so peers record
// it as left rather than dead. It waits up to timeout (0 = no limit) for the
// leave notice and memberlist's leave message to go out. The agent keeps
// running until Shutdown.
func (a *Agent) Leave(timeout time.Duration) error {
	a.lifeMu.Lock()
	defer a.lifeMu.Unlock()
	if a.isStopped() {
		return fmt.Errorf("gossip agent %q: leave: %w", a.name, ErrShutdown)
	}
	a.mu.Lock()
	self := a.members[a.name]
	if !self.rec.Leaving {
		self.rec.Leaving = true
		self.rec.Version++
	}
	err := a.encodeSelfLocked()
	msg, big := a.selfMsg, a.selfBig
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gossip agent %q: leave: %w", a.name, err)
	}
	if !big {
		a.queue.QueueBroadcast(&factsBroadcast{host: a.name, msg: msg})
	}
	// Announce the intent first and wait for it to go out, so that peers
	// take the coming dead message for a leave. If it times out the leave
	// still proceeds; peers that missed it correct themselves when the
	// leaving record reaches them.
	ml := a.ml.Load()
	start := time.Now()
	if err := ml.UpdateNode(timeout / 2); err != nil {
		a.log.Debug("leave notice not confirmed", "error", err)
	}
	if timeout > 0 {
		timeout -= time.Since(start)
		if timeout <= 0 {
			timeout = time.Millisecond
		}
	}
	if err := ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip agent %q: leave: %w", a.name, err)
	}
	return nil
}

// Shutdown stops gossiping without a goodbye (unless Leave was called):
// peers will declare this host dead. Events stop (the channel stays open).
// It waits for a Leave in progress. Safe to call more than once.
func (a *Agent) Shutdown() error {
	var err error
	a.shutOnce.Do(func() {
		a.lifeMu.Lock()
		defer a.lifeMu.Unlock()
		a.goMu.Lock()
		a.stopped = true
		a.goMu.Unlock()
		close(a.stop)
		if e := a.ml.Load().Shutdown(); e != nil {
			err = fmt.Errorf("gossip agent %q: shutdown: %w", a.name, e)
		}
		a.wg.Wait()
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
	})
	return err
}

// goBackground runs f in a goroutine that Shutdown waits for; after
// Shutdown it does nothing.
func (a *Agent) goBackground(f func()) {
	a.goMu.Lock()
	defer a.goMu.Unlock()
	if a.stopped {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

func (a *Agent) isStopped() bool {
	a.goMu.Lock()
	defer a.goMu.Unlock()
	return a.stopped
}

// kickMeta asks the repair loop to republish metadata without waiting for
// its next tick.
func (a *Agent) kickMeta() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// sendReliable sends msg to a host over TCP in the background; failures are
// only logged because the repair loop and push/pull retry what matters.
func (a *Agent) sendReliable(name, ip string, port uint16, msg []byte, what string) {
	addr := net.ParseIP(ip)
	if addr == nil {
		a.log.Debug("bad address", "host", name, "addr", ip, "what", what)
		return
	}
	to := memberlist.Node{Name: name, Addr: addr, Port: port}
	a.goBackground(func() {
		if err := a.ml.Load().SendReliable(&to, msg); err != nil {
			a.log.Debug("send failed", "host", name, "what", what, "error", err)
		}
	})
}

// splitHostPort parses an ip:port as memberlist formats it.
func splitHostPort(hp string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(p), nil
}
