package fsm

import (
	"fmt"
	"time"
)

// CmdBalanceNote records what a pass of the leader's balancer decided in
// the event log: the spread it saw, the moves it queued and the VMs it
// could not move with why (a rule, the migratable flag, the hold). The
// moves themselves are Enqueue commands of actor "balance"; the note is
// what lets an operator ask later why the leader moved a VM, or did not.
const CmdBalanceNote CommandType = 27

// EventBalance is the kind of a balancing pass's note.
const EventBalance = "balance.pass"

// BalanceNote is one balancing pass's decision, written by the leader.
type BalanceNote struct {
	Cluster string    `json:"cluster"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor,omitempty"`
}

func (x BalanceNote) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("cluster", x.Cluster)
	if len(x.Message) == 0 || len(x.Message) > 4096 {
		c.fail("balance note of %d bytes: must be 1 to 4096", len(x.Message))
	}
	c.time("time", x.At)
	return c.err
}

// applyBalanceNote changes nothing but the event log.
func applyBalanceNote(s *State, data []byte) (any, error) {
	var c BalanceNote
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	s.tick(c.At)
	s.emit(Event{Time: c.At, Actor: orActor(c.Actor, "balance"), Kind: EventBalance,
		Message: "cluster " + c.Cluster + ": " + c.Message})
	return nil, nil
}

// balanceNote is the balancing part of a cluster's cluster.set event;
// nothing while it is off, so the events of logs written before balancing
// existed replay to the same text.
func balanceNote(cl Cluster) string {
	mode, threshold, hold, budget := cl.BalanceSettings()
	if mode == BalanceOff {
		return ""
	}
	return fmt.Sprintf("; balance %s within %d points, hold %s, at most %d moves an hour", mode, threshold, hold, budget)
}
