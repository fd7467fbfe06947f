package node

import (
	"context"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// balanceState is the leader's bookkeeping of balancing passes: when the
// next periodic pass is due, how many balancing migrations were in flight
// at the last look (a pass runs again as soon as the last one ends), and
// the last note written per cluster (a pass that decides what the last
// one did writes no event).
type balanceState struct {
	next     time.Time
	inflight int
	notes    map[string]string
}

// balance runs a balancing pass of every cluster whose balancing is on,
// when one is due: every BalanceInterval (a slow pass: a spread that
// lasts is worth moving VMs for, a moment's is not), and at once when the
// balancing migrations in flight all ended (the next step of a
// convergence need not wait for the timer). The moves are Enqueue
// commands of actor BalanceActor with their destination set; the
// scheduler grants them within the slots like any other, and the FSM
// re-checks them. Each pass that moves or refuses something new writes a
// BalanceNote.
func (n *Node) balance(ctx context.Context) {
	now := time.Now().UTC()
	var clusters []string
	inflight := 0
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range s.ClusterNames() {
			if mode, _, _, _ := s.Cluster(name).BalanceSettings(); mode != fsm.BalanceOff {
				clusters = append(clusters, name)
			}
		}
		for _, m := range s.Queued() {
			if m.RequestedBy == BalanceActor {
				inflight++
			}
		}
		for _, m := range s.Running() {
			if m.RequestedBy == BalanceActor {
				inflight++
			}
		}
	})
	b := &n.balancer
	ended := b.inflight > 0 && inflight == 0
	b.inflight = inflight
	if len(clusters) == 0 || (now.Before(b.next) && !ended) {
		return
	}
	b.next = now.Add(n.cfg.BalanceInterval)
	if b.notes == nil {
		b.notes = map[string]string{}
	}
	st := n.fsm.State()
	for _, name := range clusters {
		if ctx.Err() != nil {
			return
		}
		p := PlanBalance(st, name, now)
		note := planNote(p)
		if len(p.Moves) > 0 || (note != b.notes[name] && len(p.Refused) > 0) {
			if n.try(ctx, fsm.CmdBalanceNote, fsm.BalanceNote{Cluster: name, Message: note, At: now, Actor: BalanceActor}) {
				b.notes[name] = note
			}
		}
		for _, mv := range p.Moves {
			if n.try(ctx, fsm.CmdEnqueue, fsm.Enqueue{VM: mv.VMKey, Dest: mv.To, At: now, Actor: BalanceActor}) {
				b.inflight++
			}
		}
	}
}
