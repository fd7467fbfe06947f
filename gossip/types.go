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
	// Boot is what the member says about its Raft membership (see Boot).
	Boot Boot
}

// Boot is what a host tells the mesh about its part in explicit bootstrap
// (meshd --bootstrap-expect): how many hosts it expects to start the mesh
// with, and whether it already belongs to one. A host that waits to bootstrap
// watches these on every member: any member in a mesh means there is one to
// join, never one to create.
type Boot struct {
	// Expect is the N of --bootstrap-expect N; 0 when not given.
	Expect int
	// InMesh is set once the host holds Raft state: it bootstrapped, or a
	// leader added it.
	InMesh bool
}

// maxExpect bounds Boot.Expect as read from the wire.
const maxExpect = 1 << 10

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
