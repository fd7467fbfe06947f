package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// Leave drains this host, then leaves gossip (the leader then removes it
// from Raft and marks it Left). A drain that cannot finish within timeout is
// ended as stuck and reported VM by VM; the leave goes on rather than hang.
// The host itself is the drain's actor (meshd's SIGTERM).
func (n *Node) Leave(ctx context.Context, timeout time.Duration) (*api.LeaveReport, error) {
	return n.LeaveAs(ctx, timeout, n.self())
}

// LeaveAs is Leave asked by actor (an API caller).
func (n *Node) LeaveAs(ctx context.Context, timeout time.Duration, actor string) (*api.LeaveReport, error) {
	if timeout <= 0 {
		timeout = n.cfg.DrainTimeout
	}
	start := time.Now()
	rep := &api.LeaveReport{Host: n.cfg.Name}
	var state fsm.HostState
	n.fsm.Read(func(s *fsm.State) {
		if h := s.Hosts[n.cfg.Name]; h != nil {
			state = h.State
		}
	})
	if state != fsm.HostMaintenance {
		if _, err := n.withLeaderRetry(ctx, fsm.CmdStartDrain, fsm.StartDrain{Host: n.cfg.Name, Reason: "leave", At: time.Now().UTC(), Actor: actor}); err != nil {
			return nil, fmt.Errorf("drain %s before leaving: %w", n.cfg.Name, err)
		}
	}
	d, timedOut := n.waitDrain(ctx, timeout)
	if timedOut {
		rep.TimedOut = true
		at := time.Now().UTC()
		if _, err := n.withLeaderRetry(ctx, fsm.CmdEndDrain, fsm.EndDrain{Host: n.cfg.Name, State: fsm.DrainStuck, At: at, Actor: n.self()}); err == nil {
			n.countCancelledAt(at, func(m *fsm.Migration) bool { return m.Drain == n.cfg.Name }, reasonDrainCancelled)
		}
		d, _ = n.waitDrain(ctx, 5*time.Second)
	}
	if d != nil {
		rep.Drain, rep.Moved, rep.Unmovable = d.State, d.Moved, d.Unmovable
	}
	if n.IsLeader() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("leadership transfer before leave", "err", err)
		}
	}
	if err := n.gossip.Leave(5 * time.Second); err != nil {
		n.log.Warn("gossip leave", "err", err)
	}
	rep.DurationMs = time.Since(start).Milliseconds()
	n.log.Info("left the mesh", "drain", rep.Drain, "moved", len(rep.Moved), "unmovable", len(rep.Unmovable))
	return rep, nil
}

// waitDrain waits on state changes until this host's drain is no longer
// active, or the timeout passes.
func (n *Node) waitDrain(ctx context.Context, timeout time.Duration) (*fsm.Drain, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := n.fsm.Changed()
		var d *fsm.Drain
		n.fsm.Read(func(s *fsm.State) {
			if v := s.Drains[n.cfg.Name]; v != nil {
				c := *v
				d = &c
			}
		})
		if d != nil && d.State != fsm.DrainActive {
			return d, false
		}
		select {
		case <-changed:
		case <-deadline.C:
			return d, true
		case <-ctx.Done():
			return d, true
		}
	}
}
