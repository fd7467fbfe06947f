package node

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/gossip"
)

// joinState is what the mesh watch last found, for status and tests.
type joinState struct {
	mu      sync.Mutex
	lastErr string // last failed join, "" once joined
}

func (s *joinState) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.lastErr = ""
	case gossip.IsKeyMismatch(err):
		s.lastErr = "gossip key mismatch, the peers reject this host's gossip key: " + strings.Join(strings.Fields(err.Error()), " ")
	default:
		s.lastErr = strings.Join(strings.Fields(err.Error()), " ")
	}
}

// JoinError is the last gossip join failure while this host has no peer,
// "" when it has peers or never failed.
func (n *Node) JoinError() string {
	n.joined.mu.Lock()
	defer n.joined.mu.Unlock()
	return n.joined.lastErr
}

// aliveGossipPeers counts the other hosts gossip shows alive.
func (n *Node) aliveGossipPeers() int { return n.gossip.AlivePeers() }

// join contacts the --join peers once and says loudly why it failed: an
// ERROR every attempt, naming a gossip key mismatch as such, because a host
// that is not in the mesh keeps running and an operator must see why.
func (n *Node) join() bool { return n.joinPeers(n.cfg.Join) }

func (n *Node) joinPeers(peers []string) bool {
	_, err := n.gossip.Join(peers)
	n.joined.set(err)
	if err == nil {
		return true
	}
	if gossip.IsKeyMismatch(err) {
		n.log.Error("not in a mesh: the peers reject this host's gossip key (gossip key mismatch)",
			"peers", peers, "cause", "no installed keys could decrypt the message", "err", err)
	} else {
		n.log.Error("not in a mesh: no peer answered the gossip join", "peers", peers, "err", err)
	}
	return false
}

// rejoinPeers are the addresses a host alone in gossip tries: its --join
// peers and every host gossip knew (failed, not left). A host started
// without --join (the one that bootstrapped the mesh) needs the second: cut
// off by a partition longer than gossip's gossip-to-the-dead time, it and
// the others stop gossiping to each other for good, the others are not
// alone and never rejoin, and it stayed out of the mesh, its Raft replica
// behind, until something restarted (the fault matrix found it).
func (n *Node) rejoinPeers() []string {
	out := slices.Clone(n.cfg.Join)
	for _, m := range n.gossip.Members() {
		if m.Name != n.cfg.Name && m.Status != gossip.StatusLeft && m.Addr != "" && !slices.Contains(out, m.Addr) {
			out = append(out, m.Addr)
		}
	}
	return out
}

// meshWatch joins the --join peers, and the hosts gossip knew, whenever
// gossip shows this host alone, as Consul's retry-join does, backing off
// from 200 ms to 10 s: hosts boot in any order, a wrong or rotated-away
// gossip key must keep being reported, and a host cut off by a partition
// comes back by itself. A host that joins no one and knows no one starts
// the mesh, alone at first.
func (n *Node) meshWatch() {
	const maxDelay = 10 * time.Second
	delay := 200 * time.Millisecond
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(delay):
		}
		if n.aliveGossipPeers() > 0 {
			n.joined.set(nil)
			delay = 200 * time.Millisecond
			if !n.cfg.Fast {
				delay = 2 * time.Second
			}
			continue
		}
		peers := n.rejoinPeers()
		if len(peers) == 0 {
			continue // alone: the first host of a new mesh
		}
		if n.joinPeers(peers) {
			n.log.Info("joined the mesh", "peers", peers)
			continue
		}
		delay = min(delay*2, maxDelay)
	}
}
