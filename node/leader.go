package node

import (
	"context"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
)

// leaderLoop watches leadership through Raft's NotifyCh (reliable, unlike the
// best-effort LeaderCh) and runs the leader's duties only while leading, as
// consul's leader loop does: membership events first, a full reconcile on a
// ticker to catch what events missed, and the scheduler on every state change.
func (n *Node) leaderLoop() {
	var stop context.CancelFunc
	done := make(chan struct{})
	close(done)
	for {
		select {
		case <-n.ctx.Done():
			if stop != nil {
				stop()
				<-done
			}
			return
		case isLeader := <-n.leaderNotify:
			if isLeader && stop == nil {
				var ctx context.Context
				ctx, stop = context.WithCancel(n.ctx)
				done = make(chan struct{})
				go func() { defer close(done); n.lead(ctx) }()
				n.log.Info("became leader")
			} else if !isLeader && stop != nil {
				stop()
				<-done
				stop = nil
				n.transport.closeIdle()
				n.log.Info("lost leadership")
			}
		}
	}
}

// lead runs until leadership is lost. Every step reads the state first and
// proposes only what changed, so running it twice is harmless.
func (n *Node) lead(ctx context.Context) {
	// A barrier makes sure every entry of earlier terms is applied before the
	// new leader reads the state it schedules from.
	if err := n.raft.Barrier(applyTimeout).Error(); err != nil {
		n.log.Warn("leader barrier", "err", err)
	}
	n.paceLeading()
	// The first entry of every leader: it records the change and raises
	// the log's version to this meshd's, so every replica applies the
	// entries after it under this version's rules.
	n.try(ctx, fsm.CmdLeaderElected, fsm.LeaderElected{Leader: n.cfg.Name, Version: fsm.LogVersion, At: time.Now().UTC()})
	n.writeInitialToken(ctx)
	// Gossip events queued while this host followed are stale (nothing reads
	// them then): handling them one by one, a Raft commit for each whose
	// facts differ from the state, kept a new leader of 100 hosts from
	// planning for seconds after a failover. The full reconcile below reads
	// every member's current state instead.
	n.discardEvents()
	n.settle.reset()
	n.balancer = balanceState{}
	tick := time.NewTicker(n.cfg.ReconcileInterval)
	defer tick.Stop()
	// Plan first: the queue must run again as soon as possible after a
	// failover; the full membership pass of a large mesh can wait a moment.
	n.schedule(ctx)
	n.reconcile(ctx)
	planned := n.fsm.SchedGen()
	for {
		changed := n.fsm.Changed()
		select {
		case <-ctx.Done():
			return
		case ev := <-n.gossip.Events():
			n.handleEvent(ctx, ev)
			n.drainEvents(ctx)
		case <-tick.C:
			n.reconcile(ctx)
		case <-changed:
			// Progress samples arrive several times a second per running
			// migration and never change a decision: planning on each of
			// them cost a full state copy apiece.
			if g := n.fsm.SchedGen(); g != planned {
				planned = g
				n.schedule(ctx)
				n.balance(ctx)
			}
		}
	}
}

// drainEvents handles the membership events already waiting, so a burst of
// joins is reconciled before the next scheduling pass.
func (n *Node) drainEvents(ctx context.Context) {
	for {
		select {
		case ev := <-n.gossip.Events():
			n.handleEvent(ctx, ev)
		default:
			n.schedule(ctx)
			return
		}
	}
}

// handleEvent handles the member an event is about as gossip knows it now:
// an event can be older than the member's latest facts, and proposing its
// copy would set the replicated host back until the next event.
func (n *Node) handleEvent(ctx context.Context, ev gossip.Event) {
	m := ev.Member
	if cur, ok := n.gossip.Member(m.Name); ok {
		m = cur
	}
	n.handleMember(ctx, m, nil)
}

// discardEvents drops the events already waiting.
func (n *Node) discardEvents() {
	for {
		select {
		case <-n.gossip.Events():
		default:
			return
		}
	}
}

// reconcile is the periodic full pass: every gossip member, the Raft
// configuration, the drains, then the scheduler.
func (n *Node) reconcile(ctx context.Context) {
	peers := n.peersNow()
	for _, m := range n.gossip.Members() {
		if ctx.Err() != nil {
			return
		}
		n.handleMember(ctx, m, peers)
	}
	n.reconcileRaftPeers(ctx)
	n.reconcileCPUBaseline(ctx)
	n.reconcileDrains(ctx)
	n.pruneLeftHosts(ctx)
	n.settleUnreported(ctx)
	n.schedule(ctx)
	n.balance(ctx)
}

// pruneLeftHosts removes the hosts that left the mesh more than
// LeftHostGrace ago and run no VMs, so the state does not keep every host
// that ever was. A host that left before hosts recorded since when (log
// version 1) is old enough. The FSM refuses the removal of a host that
// still takes part in a migration.
func (n *Node) pruneLeftHosts(ctx context.Context) {
	now := time.Now().UTC()
	var gone []string
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range s.HostNames() {
			h := s.Hosts[name]
			if h.State == fsm.HostLeft && now.Sub(h.Since) > n.cfg.LeftHostGrace && len(s.VMsOn(name)) == 0 {
				gone = append(gone, name)
			}
		}
	})
	for _, h := range gone {
		n.try(ctx, fsm.CmdRemoveHost, fsm.RemoveHost{Host: h, Actor: n.self(), At: now})
	}
}
