package node

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/gossip"
)

// ErrNoBootstrap is returned when a host has no Raft state, nothing to join
// and no order to start a mesh: starting one anyway would silently split the
// hosts into two meshes (Consul refuses the same way without -bootstrap or
// -bootstrap-expect).
var ErrNoBootstrap = errors.New("no mesh to join and no bootstrap requested")

// checkBootstrapConfig rejects contradictory bootstrap settings.
func (c *Config) checkBootstrapConfig() error {
	switch {
	case c.Bootstrap && c.BootstrapExpect > 0:
		return fmt.Errorf("node %s config: --bootstrap and --bootstrap-expect exclude each other", c.Name)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("node %s config: --bootstrap-expect %d: want a positive number of hosts", c.Name, c.BootstrapExpect)
	case c.BootstrapExpect > c.MaxVoters:
		return fmt.Errorf("node %s config: --bootstrap-expect %d is more than --max-voters %d", c.Name, c.BootstrapExpect, c.MaxVoters)
	}
	return nil
}

// refuseWithoutBootstrap is checked on a data dir without Raft state, before
// anything else starts.
func (n *Node) refuseWithoutBootstrap(dir string) error {
	if n.cfg.Bootstrap || n.cfg.BootstrapExpect > 0 || len(n.cfg.Join) > 0 {
		return nil
	}
	return fmt.Errorf("data dir %s holds no mesh state and no --join was given: %w; "+
		"pass --bootstrap on the one host that starts a new mesh (once), "+
		"--bootstrap-expect N on each of the N hosts that start it together, "+
		"or --join ADDR to join an existing mesh", dir, ErrNoBootstrap)
}

// bootstrapTimings are how often the bootstrap watch looks at gossip and how
// long the set of expected hosts must stay the same before it is used.
func (n *Node) bootstrapTimings() (poll, settle time.Duration) {
	if n.cfg.Fast {
		return 50 * time.Millisecond, 300 * time.Millisecond
	}
	return 500 * time.Millisecond, 3 * time.Second
}

// startBootstrap runs once gossip is up (and joined, when asked): a host with
// Raft state only says so; --bootstrap starts a single-voter mesh unless a
// member reached is in one already; otherwise the bootstrap watch waits for
// --bootstrap-expect hosts or for a leader to add this host.
func (n *Node) startBootstrap() error {
	if n.hadState {
		if n.cfg.Bootstrap || n.cfg.BootstrapExpect > 0 {
			n.log.Info("raft state found in the data dir: --bootstrap and --bootstrap-expect are ignored", "data_dir", n.cfg.DataDir)
		}
		n.gossip.SetBoot(gossip.Boot{Expect: n.cfg.BootstrapExpect, InMesh: true})
		return nil
	}
	if n.cfg.Bootstrap {
		if m, ok := n.memberInMesh(); ok {
			n.log.Warn("a mesh exists already: --bootstrap ignored, waiting for its leader to add this host", "member", m)
		} else {
			return n.bootstrapWith([]gossip.Member{n.selfMember()})
		}
	}
	n.go_(n.bootstrapWatch)
	return nil
}

// selfMember is this host as gossip shows it, or as it would if facts are
// not in yet.
func (n *Node) selfMember() gossip.Member {
	if m, ok := n.gossip.Member(n.cfg.Name); ok && m.Facts.RaftAddr != "" {
		return m
	}
	m := gossip.Member{Name: n.cfg.Name, Status: gossip.StatusAlive}
	m.Facts.RaftAddr = n.RaftAddr()
	return m
}

// memberInMesh names an alive peer that is in a mesh already.
func (n *Node) memberInMesh() (string, bool) {
	for _, m := range n.gossip.Members() {
		if m.Name != n.cfg.Name && m.Status == gossip.StatusAlive && m.Boot.InMesh {
			return m.Name, true
		}
	}
	return "", false
}

// bootstrapWith bootstraps Raft with the given hosts as voters, in name
// order (every host of the set computes the same configuration).
func (n *Node) bootstrapWith(voters []gossip.Member) error {
	cfg := raft.Configuration{}
	names := make([]string, 0, len(voters))
	for _, m := range voters {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(m.Name),
			Address: raft.ServerAddress(m.Facts.RaftAddr), Suffrage: raft.Voter})
		names = append(names, m.Name)
	}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap raft on %s with %s: %w", n.cfg.Name, strings.Join(names, ", "), err)
	}
	n.gossip.SetBoot(gossip.Boot{Expect: n.cfg.BootstrapExpect, InMesh: true})
	n.log.Info("bootstrapped a new mesh", "voters", names)
	return nil
}

// bootstrapWatch runs on a host without Raft state until a mesh holds it:
// it notices when a leader added this host (the Raft configuration is no
// longer empty) and says so in gossip; with --bootstrap-expect N it also
// waits until gossip shows N alive hosts that expect N and are in no mesh,
// and then the first of them by name, and only it, bootstraps Raft with all
// of them as voters. Any member already in a mesh stops that: the host waits
// to be added instead, so a wiped or late host never starts a second mesh.
func (n *Node) bootstrapWatch() {
	poll, settle := n.bootstrapTimings()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var (
		stableSet   string
		stableSince time.Time
		said        string // last state logged, so each is logged once
	)
	say := func(state, msg string, args ...any) {
		if state != said {
			said = state
			n.log.Info(msg, args...)
		}
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if cfg, err := n.raftConfig(); err == nil && len(cfg) > 0 {
			n.gossip.SetBoot(gossip.Boot{Expect: n.cfg.BootstrapExpect, InMesh: true})
			n.log.Info("this host is in the mesh now", "raft_servers", len(cfg))
			return
		}
		if n.cfg.BootstrapExpect == 0 {
			continue
		}
		if m, ok := n.memberInMesh(); ok {
			say("mesh:"+m, "a mesh exists already: waiting for its leader to add this host", "member", m)
			continue
		}
		cands, other := n.bootstrapCandidates()
		if len(other) > 0 {
			say("mismatch:"+strings.Join(other, ","), "hosts expect another number of bootstrap hosts: they are not counted",
				"expect", n.cfg.BootstrapExpect, "hosts", other)
		}
		if len(cands) < n.cfg.BootstrapExpect {
			say(fmt.Sprintf("wait:%d", len(cands)), "waiting for hosts started with the same --bootstrap-expect",
				"expect", n.cfg.BootstrapExpect, "seen", len(cands))
			stableSet = ""
			continue
		}
		if cands[0].Name != n.cfg.Name {
			say("peer:"+cands[0].Name, "expected hosts are here: the first by name bootstraps the mesh",
				"bootstrapper", cands[0].Name)
			continue
		}
		set := memberNames(cands)
		if set != stableSet {
			stableSet, stableSince = set, time.Now()
			continue
		}
		if time.Since(stableSince) < settle {
			continue
		}
		if len(cands) > n.cfg.MaxVoters {
			cands = cands[:n.cfg.MaxVoters] // the rest are added by the leader
		}
		if err := n.bootstrapWith(cands); err != nil {
			n.log.Error("bootstrap", "err", err)
			continue
		}
		return
	}
}

// bootstrapCandidates returns the alive hosts (this one included) that expect
// the same number of bootstrap hosts, are in no mesh and have gossiped their
// Raft address, sorted by name; and the names of hosts expecting another
// number.
func (n *Node) bootstrapCandidates() (cands []gossip.Member, other []string) {
	for _, m := range n.gossip.Members() {
		if m.Status != gossip.StatusAlive || m.Boot.InMesh {
			continue
		}
		switch {
		case m.Boot.Expect == n.cfg.BootstrapExpect && m.Facts.RaftAddr != "":
			cands = append(cands, m)
		case m.Boot.Expect != 0 && m.Boot.Expect != n.cfg.BootstrapExpect:
			other = append(other, m.Name)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Name < cands[j].Name })
	slices.Sort(other)
	return cands, other
}

func memberNames(ms []gossip.Member) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ",")
}
