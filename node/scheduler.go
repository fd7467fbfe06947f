package node

import (
	"context"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// schedule runs the slot scheduler over the current state and commits its
// decisions. Grants are re-checked by the FSM, so a decision made on a state
// that moved on is refused there instead of exceeding a limit.
func (n *Node) schedule(ctx context.Context) {
	var pending bool
	n.fsm.Read(func(s *fsm.State) { pending = len(s.Queued()) > 0 })
	if pending {
		st := n.fsm.State()
		now := time.Now().UTC()
		for _, d := range migrate.Schedule(st) {
			if ctx.Err() != nil {
				return
			}
			if d.Fail != "" {
				if n.try(ctx, fsm.CmdFinish, fsm.Finish{ID: d.Migration, Attempt: d.Attempt, State: fsm.MigFailed, Reason: d.Fail, At: now, Actor: n.self()}) {
					n.countEnded(d.Migration, d.Attempt, reasonUnplaceable)
				}
				continue
			}
			n.try(ctx, fsm.CmdGrant, fsm.Grant{ID: d.Migration, Dest: d.Dest, BandwidthMiB: d.BandwidthMiB,
				Reason: d.Reason, At: now, Reshare: d.Reshare})
		}
	}
	n.reshare(ctx)
}

// reshare raises the caps of an auto-bandwidth cluster's running migrations
// when one of them ended (grants lower them themselves).
func (n *Node) reshare(ctx context.Context) {
	var shares []fsm.Share
	n.fsm.Read(func(s *fsm.State) {
		if len(s.Running()) > 0 {
			shares = migrate.Reshare(s)
		}
	})
	if len(shares) > 0 && ctx.Err() == nil {
		n.try(ctx, fsm.CmdReshare, fsm.Reshare{Shares: shares})
	}
}

// reconcileDrains queues the VMs of a draining host that have no migration
// yet (they appeared in inventory after the drain started) and fails the
// migrations of hosts that are gone, whatever events were missed.
func (n *Node) reconcileDrains(ctx context.Context) {
	type pend struct{ vm, host, policy string }
	var todo []pend
	n.fsm.Read(func(s *fsm.State) {
		for host, d := range s.Drains {
			if d.State != fsm.DrainActive {
				continue
			}
			for _, vm := range s.VMsOn(host) {
				if _, bad := d.Unmovable[vm.Name]; vm.Migration == "" && !bad && vm.State == fsm.VMRunning {
					todo = append(todo, pend{vm.Key(), host, ""})
				}
			}
		}
	})
	for _, p := range todo {
		n.try(ctx, fsm.CmdEnqueue, fsm.Enqueue{VM: p.vm, Drain: p.host, At: time.Now().UTC(), Actor: n.self()})
	}
	var gone []string
	n.fsm.Read(func(s *fsm.State) {
		for _, m := range s.Queue {
			mig := s.Migrations[m]
			if mig == nil {
				continue
			}
			for _, h := range []string{mig.Source, mig.Dest} {
				if hs := s.Hosts[h]; hs != nil && (hs.State == fsm.HostDown || hs.State == fsm.HostLeft) {
					gone = append(gone, h)
				}
			}
		}
	})
	for _, h := range gone {
		n.failMigrationsOf(ctx, h, "host "+h+" is gone")
	}
}
