package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// FrozenReason starts the state reason of a host frozen for a system
// shutdown or reboot (meshd's shutdown_policy freeze): the host is in
// Maintenance so that nothing is placed on it while it goes down, its VMs
// stay where they are, and its meshd thaws it (Activate) when it comes back.
const FrozenReason = "frozen for a system shutdown"

// Freeze marks this host frozen: Maintenance with FrozenReason and why. It
// moves no VM. A host already in Maintenance or draining is left as it is
// (an operator's maintenance is not the shutdown's to undo).
func (n *Node) Freeze(ctx context.Context, why string) error {
	var st fsm.HostState
	n.fsm.Read(func(s *fsm.State) {
		if h := s.Hosts[n.cfg.Name]; h != nil {
			st = h.State
		}
	})
	switch st {
	case fsm.HostUp, fsm.HostNonOperational, fsm.HostDown:
	case "":
		return fmt.Errorf("freeze %s: the host is not in the state", n.cfg.Name)
	default:
		n.log.Info("freeze: host left as it is", "state", st)
		return nil
	}
	reason := FrozenReason
	if why != "" {
		reason += " (" + why + ")"
	}
	if _, err := n.withLeaderRetry(ctx, fsm.CmdSetHostState, fsm.SetHostState{Host: n.cfg.Name, State: fsm.HostMaintenance,
		Reason: reason, At: time.Now().UTC()}); err != nil {
		return fmt.Errorf("freeze %s: %w", n.cfg.Name, err)
	}
	return nil
}

// Frozen says whether this host is frozen (Freeze) in the replica it holds.
func (n *Node) Frozen() bool {
	var frozen bool
	n.fsm.Read(func(s *fsm.State) {
		h := s.Hosts[n.cfg.Name]
		frozen = h != nil && h.State == fsm.HostMaintenance && strings.HasPrefix(h.StateReason, FrozenReason)
	})
	return frozen
}

// Thaw brings a frozen host back to Up when its meshd starts again (or the
// shutdown was cancelled). It waits until this host's replica caught up
// (caughtUp: a leader is known, and the log it had on disk is applied, not
// only what the leader's first heartbeat told: before that the replica can
// miss the freeze itself, and the host would stay frozen); a host that is
// not frozen is left as it is. A host that was marked Down while it
// rebooted came back Up already (handleMember).
func (n *Node) Thaw(ctx context.Context) error {
	for {
		changed := n.fsm.Changed()
		known := false
		n.fsm.Read(func(s *fsm.State) { known = s.Hosts[n.cfg.Name] != nil })
		if known && n.caughtUp() {
			break
		}
		select {
		case <-changed:
		case <-time.After(time.Second): // the leader may be found without a state change
		case <-ctx.Done():
			return fmt.Errorf("thaw %s: %w", n.cfg.Name, ctx.Err())
		}
	}
	if !n.Frozen() {
		return nil
	}
	if _, err := n.withLeaderRetry(ctx, fsm.CmdActivate, fsm.Activate{Host: n.cfg.Name, Actor: n.self(), At: time.Now().UTC()}); err != nil {
		return fmt.Errorf("thaw %s: %w", n.cfg.Name, err)
	}
	n.log.Info("thawed: the host was frozen for a system shutdown and is Up again")
	return nil
}
