package node

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
)

// handleMember turns one gossip member's status and facts into replicated
// host state. It proposes only what differs from the state.
func (n *Node) handleMember(ctx context.Context, m gossip.Member, peers *peerSet) {
	var h *fsm.Host
	var cl fsm.Cluster
	n.fsm.Read(func(s *fsm.State) {
		if cur := s.Hosts[m.Name]; cur != nil {
			c := *cur
			h = &c
		}
		cl = s.Cluster(m.Facts.Cluster)
	})
	switch m.Status {
	case gossip.StatusAlive:
		if m.Facts.Name == "" {
			return // facts not gossiped yet
		}
		if h == nil || !reflect.DeepEqual(h.HostFacts, m.Facts) {
			n.try(ctx, fsm.CmdUpsertHost, fsm.UpsertHost{Facts: m.Facts, At: time.Now().UTC()})
		}
		n.ensurePeer(m, peers)
		want, reason := hostHealth(m.Facts, cl)
		cur := fsm.HostUp
		if h != nil {
			cur = h.State
		}
		switch {
		case cur == fsm.HostDown || cur == fsm.HostLeft:
			n.setHostState(ctx, m.Name, want, reason)
		case cur == fsm.HostUp && want == fsm.HostNonOperational:
			n.setHostState(ctx, m.Name, want, reason)
		case cur == fsm.HostNonOperational && want == fsm.HostUp:
			n.setHostState(ctx, m.Name, want, "")
		}
	case gossip.StatusDead:
		if h != nil && h.State != fsm.HostDown && h.State != fsm.HostLeft {
			n.setHostState(ctx, m.Name, fsm.HostDown, "gossip: host failed (no answer to probes)")
		}
		n.failMigrationsOf(ctx, m.Name, "host "+m.Name+" is Down")
		n.removeFailedPeer(m.Name)
	case gossip.StatusLeft:
		if h != nil && h.State != fsm.HostLeft {
			n.setHostState(ctx, m.Name, fsm.HostLeft, "left the mesh")
		}
		n.failMigrationsOf(ctx, m.Name, "host "+m.Name+" left the mesh")
		n.removePeer(m.Name)
	}
}

// hostHealth says whether a live host may take VMs: it must offer every
// network its cluster requires, every CPU flag of the cluster's flag
// baseline, and (by its own libvirt's verdict) the cluster's computed CPU
// baseline (oVirt marks such hosts NonOperational).
func hostHealth(f fsm.HostFacts, cl fsm.Cluster) (fsm.HostState, string) {
	var why []string
	var nets []string
	for _, r := range cl.RequiredNetworks {
		if !slices.ContainsFunc(f.Networks, func(nw fsm.Network) bool { return nw.Name == r }) {
			nets = append(nets, r)
		}
	}
	if len(nets) > 0 {
		why = append(why, "missing required networks "+strings.Join(nets, ", "))
	}
	var flags []string
	for _, fl := range cl.CPUBaseline {
		if !slices.Contains(f.CPUFlags, fl) {
			flags = append(flags, fl)
		}
	}
	if len(flags) > 0 {
		why = append(why, "CPU lacks the cluster baseline flags "+strings.Join(flags, ", "))
	}
	if issue := baselineIssue(f, cl); issue != "" {
		why = append(why, issue)
	}
	if len(why) > 0 {
		return fsm.HostNonOperational, strings.Join(why, "; ")
	}
	return fsm.HostUp, ""
}

func (n *Node) setHostState(ctx context.Context, host string, st fsm.HostState, reason string) {
	n.try(ctx, fsm.CmdSetHostState, fsm.SetHostState{Host: host, State: st, Reason: reason, At: time.Now().UTC()})
}

// failMigrationsOf ends the queued migrations of a source that is gone:
// they never started and cannot start now. A Running migration of a gone
// host is not failed here: its libvirt job may still run (a host's meshd
// can be down while its hypervisor migrates on), so a Running migration
// whose source is gone is settled from the hypervisors (settleUnreported),
// and one whose destination is gone is left to its source, which watches
// the job and reports how it ends.
func (n *Node) failMigrationsOf(ctx context.Context, host, reason string) {
	var ids []string
	var attempts []int
	n.fsm.Read(func(s *fsm.State) {
		for _, id := range s.Queue {
			if m := s.Migrations[id]; m != nil && m.State == fsm.MigQueued && m.Source == host {
				ids = append(ids, id)
				attempts = append(attempts, m.Attempt)
			}
		}
	})
	for i, id := range ids {
		if n.try(ctx, fsm.CmdFinish, fsm.Finish{ID: id, Attempt: attempts[i], State: fsm.MigFailed, Reason: reason, At: time.Now().UTC(), Actor: n.self()}) {
			n.countEnded(id, attempts[i], reasonHostDown)
		}
	}
}

// peerSet is the Raft configuration as ensurePeer needs it: each server's
// address and the number of voters. A reconcile pass reads it once for all
// members: reading it per member (a round trip through Raft's main loop and
// a copy of every server) made a pass cost the leader hosts² work, about
// 48 MB of garbage every 2 s at 1,000 hosts.
type peerSet struct {
	addr   map[raft.ServerID]raft.ServerAddress
	voters int
}

// peersNow reads the Raft configuration into a peerSet (nil on error).
func (n *Node) peersNow() *peerSet {
	cfg, err := n.raftConfig()
	if err != nil {
		return nil
	}
	ps := &peerSet{addr: make(map[raft.ServerID]raft.ServerAddress, len(cfg))}
	for _, s := range cfg {
		ps.addr[s.ID] = s.Address
		if s.Suffrage == raft.Voter {
			ps.voters++
		}
	}
	return ps
}

// ensurePeer adds a live host to Raft: as a voter while there are fewer than
// MaxVoters, else as a non-voter, so every host holds a replica. peers is
// the configuration read once by the caller's pass (nil: read it here).
func (n *Node) ensurePeer(m gossip.Member, peers *peerSet) {
	if m.Facts.RaftAddr == "" || !n.IsLeader() {
		return
	}
	if peers == nil {
		if peers = n.peersNow(); peers == nil {
			return
		}
	}
	id, addr := raft.ServerID(m.Name), raft.ServerAddress(m.Facts.RaftAddr)
	if cur, ok := peers.addr[id]; ok && cur == addr {
		return
	}
	// New, or its address changed: add (again) with the new one.
	var f raft.IndexFuture
	voter := peers.voters < n.cfg.MaxVoters
	if voter {
		f = n.raft.AddVoter(id, addr, 0, applyTimeout)
	} else {
		f = n.raft.AddNonvoter(id, addr, 0, applyTimeout)
	}
	if err := f.Error(); err != nil {
		n.log.Warn("add raft peer", "peer", m.Name, "err", err)
		return
	}
	if _, known := peers.addr[id]; !known && voter {
		peers.voters++
	}
	peers.addr[id] = addr
	n.log.Info("added raft peer", "peer", m.Name, "voter", voter)
}

// removeFailedPeer removes a server that gossip declared dead, unless it
// answered Raft within failedPeerContact: gossip and Raft are separate
// networks, and a leader cut off gossip alone sees every other host dead
// while their Raft answers. Removing them on gossip's word would shrink the
// configuration to the leader itself, one committed removal at a time, and
// leave every other replica behind for good (the fault matrix's lost
// gossip of the leader did). A host that left (gossip Left) is removed in
// any case.
func (n *Node) removeFailedPeer(name string) {
	if !n.IsLeader() || name == n.cfg.Name {
		return
	}
	if last := n.transport.lastAnswer(raft.ServerID(name)); time.Since(last) < failedPeerContact {
		if !n.removalHeld.Swap(true) {
			n.log.Warn("not removing failed raft peer: gossip says dead, but it answers Raft (is gossip cut?)",
				"peer", name, "last_answer", last.Format(time.RFC3339Nano))
		}
		return
	}
	n.removalHeld.Store(false)
	n.removePeer(name)
}

// failedPeerContact: a peer that answered Raft this recently is alive,
// whatever gossip says. Heartbeats go out several times a second (an idle
// leader paces a non-voter's to one a second), so a failed host's last
// answer is this old some seconds after it failed, and the next reconcile
// removes it.
const failedPeerContact = 5 * time.Second

func (n *Node) removePeer(name string) {
	if !n.IsLeader() || name == n.cfg.Name {
		return
	}
	cfg, err := n.raftConfig()
	if err != nil {
		return
	}
	for _, s := range cfg {
		if string(s.ID) == name {
			if err := n.raft.RemoveServer(s.ID, 0, applyTimeout).Error(); err != nil {
				n.log.Warn("remove raft peer", "peer", name, "err", err)
			} else {
				n.log.Info("removed raft peer", "peer", name)
			}
			n.promoteNonvoters()
			return
		}
	}
}

// reconcileRaftPeers removes servers gossip knows are gone and promotes
// healthy non-voters until there are MaxVoters voters again.
func (n *Node) reconcileRaftPeers(ctx context.Context) {
	if !n.IsLeader() {
		return
	}
	cfg, err := n.raftConfig()
	if err != nil {
		return
	}
	n.paceNonvoters(cfg)
	for _, s := range cfg {
		if m, ok := n.gossip.Member(string(s.ID)); ok {
			switch m.Status {
			case gossip.StatusLeft:
				n.removePeer(m.Name)
			case gossip.StatusDead:
				n.removeFailedPeer(m.Name)
			}
		}
	}
	n.promoteNonvoters()
}

func (n *Node) promoteNonvoters() {
	cfg, err := n.raftConfig()
	if err != nil {
		return
	}
	voters := 0
	var candidates []raft.Server
	for _, s := range cfg {
		if s.Suffrage == raft.Voter {
			voters++
		} else if m, ok := n.gossip.Member(string(s.ID)); ok && m.Status == gossip.StatusAlive {
			candidates = append(candidates, s)
		}
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i].ID < candidates[j].ID })
	for _, s := range candidates {
		if voters >= n.cfg.MaxVoters {
			return
		}
		if n.transport.pace != nil {
			n.transport.pace.voter(s.ID) // full heartbeats before it may stand for election
		}
		if err := n.raft.AddVoter(s.ID, s.Address, 0, applyTimeout).Error(); err != nil {
			n.log.Warn("promote non-voter", "peer", s.ID, "err", err)
			return
		}
		voters++
	}
}

func (n *Node) raftConfig() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// try proposes and logs failures: leader duties are re-run by the next
// reconcile, so a failed step is retried rather than lost.
func (n *Node) try(ctx context.Context, ct fsm.CommandType, payload any) bool {
	if _, err := n.propose(ctx, ct, payload); err != nil {
		n.log.Debug("leader step", "command", ct, "err", err)
		return false
	}
	return true
}
