package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// ErrNoLeader is returned while the mesh has no elected leader.
var ErrNoLeader = errors.New("no raft leader")

// applyTimeout bounds one Raft apply, so a lost quorum surfaces as an error.
const applyTimeout = 10 * time.Second

// propose commits one command through Raft: directly when this node leads,
// otherwise forwarded to the leader's API. The value is the command's result.
func (n *Node) propose(ctx context.Context, ct fsm.CommandType, payload any) (json.RawMessage, error) {
	data, err := fsm.Encode(ct, payload)
	if err != nil {
		return nil, err
	}
	return n.proposeRaw(ctx, data)
}

func (n *Node) proposeRaw(ctx context.Context, data []byte) (json.RawMessage, error) {
	if n.raft.State() == raft.Leader {
		return n.applyLocal(data)
	}
	// Refuse here what the leader would refuse: a malformed command costs
	// no round trip.
	if err := fsm.Validate(data); err != nil {
		return nil, err
	}
	return n.forward(ctx, data)
}

// applyLocal applies on the leader and turns the FSM's Result into a value or error.
func (n *Node) applyLocal(data []byte) (json.RawMessage, error) {
	v, _, err := n.applyLocalIndex(data)
	return v, err
}

// applyLocalIndex also returns the entry's Raft index, which a forwarding
// follower waits for before it answers its client. The entry is validated
// first: a malformed command never enters the log (it would be copied to
// every replica and kept until the next snapshot), and once the log is
// validated, an entry a replica cannot decode stops that replica.
func (n *Node) applyLocalIndex(data []byte) (json.RawMessage, uint64, error) {
	if err := fsm.Validate(data); err != nil {
		return nil, 0, err
	}
	return n.applyValidated(data)
}

// applyValidated applies an entry fsm.Validate accepted.
func (n *Node) applyValidated(data []byte) (json.RawMessage, uint64, error) {
	f := n.raft.Apply(data, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		return nil, 0, fmt.Errorf("raft apply: %w", err)
	}
	res, _ := f.Response().(fsm.Result)
	if res.Err != nil {
		return nil, f.Index(), res.Err
	}
	b, err := json.Marshal(res.Value)
	if err != nil {
		return nil, f.Index(), fmt.Errorf("marshal command result: %w", err)
	}
	return b, f.Index(), nil
}

// indexHeader carries the Raft index of a forwarded write's entry (and of
// the state a blocking read answered from).
const indexHeader = "X-Raft-Index"

// waitApplied waits until this replica has applied index, so a client that
// wrote through this node reads its own write from it next.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	deadline := time.NewTimer(applyTimeout)
	defer deadline.Stop()
	for {
		changed := n.fsm.Changed()
		if n.fsm.Index() >= index {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// leaderHostPort finds the leader and the address of its host port, which
// serves the host-only routes: the address the Raft configuration has for
// it, where this host's Raft already reaches it.
func (n *Node) leaderHostPort() (name, addr string, err error) {
	a, id := n.raft.LeaderWithID()
	if id == "" {
		return "", "", ErrNoLeader
	}
	if a == "" {
		return "", "", fmt.Errorf("%w: leader %s has no known address", ErrNoLeader, id)
	}
	return string(id), string(a), nil
}

// forward sends a raw command to the leader's internal apply route (on its
// host port, with this host's certificate) and
// waits until this replica applied its entry, so the client reads its own
// write from this node next. A leader that cannot be reached is no leader
// to this client (503): nothing was applied that it could learn of.
func (n *Node) forward(ctx context.Context, data []byte) (json.RawMessage, error) {
	leader, addr, err := n.leaderHostPort()
	if err != nil {
		return nil, err
	}
	cl, err := n.peers.client(leader, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	v, idx, err := cl.InternalApply(ctx, data)
	if idx > 0 {
		n.waitApplied(ctx, idx)
	}
	var ae *api.Error
	var ce *api.ConnError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &ae):
		return nil, remoteError(ae)
	case errors.As(err, &ce):
		return nil, fmt.Errorf("%w: forward to leader %s at %s: %v", ErrNoLeader, leader, addr, ce.Err)
	}
	return nil, fmt.Errorf("forward to leader %s at %s: %w", leader, addr, err)
}

// withLeaderRetry retries a proposal across a leader election, so callers
// (progress reports, finishes) are not lost to a failover.
func (n *Node) withLeaderRetry(ctx context.Context, ct fsm.CommandType, payload any) (json.RawMessage, error) {
	var last error
	for attempt := 0; attempt < 40; attempt++ {
		v, err := n.propose(ctx, ct, payload)
		if err == nil || !isRetryable(err) {
			return v, err
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil, last
}

func isRetryable(err error) bool {
	if errors.Is(err, fsm.ErrRejected) || errors.Is(err, fsm.ErrMalformed) {
		return false
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status < 500 {
		return false
	}
	return true
}
