package gossip

import "github.com/hostmesh/hostmesh/fsm"

// Status is the liveness of a member as this agent sees it.
type Status string

// Member statuses. StatusSuspect is part of the vocabulary but is not reported
// today: memberlist does not expose suspicion safely (see package doc).
const (
	StatusAlive   Status = "alive"
	StatusSuspect Status = "suspect"
	StatusDead    Status = "dead"
	StatusLeft    Status = "left"
)

// Member is one host of the mesh with the latest facts this agent holds for
// it. A dead or left member keeps its last facts.
type Member struct {
	Name string
	// Addr is the ip:port the member gossips on.
	Addr    string
	Status  Status
	Facts   fsm.HostFacts
	Version uint64
}

// EventType says what happened to a member.
type EventType int

// Event types. EventJoin fires once a member is alive and its facts are
// known (memberlist sees the member before its facts arrive, and a member
// without facts is of no use to the leader); EventUpdate fires for newer facts
// or a new address; EventFailed and EventLeft tell a crash from a graceful
// leave.
const (
	EventJoin EventType = iota
	EventUpdate
	EventFailed
	EventLeft
)

// String names the event type for logs.
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventFailed:
		return "failed"
	case EventLeft:
		return "left"
	}
	return "unknown"
}

// Event is a change of one member, with the member as it was right after.
type Event struct {
	Type   EventType
	Member Member
}
