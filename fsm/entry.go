package fsm

import (
	"errors"
	"fmt"
	"strconv"
)

// The entry format. A Raft log entry is one type byte followed by the
// command's JSON (Encode). The rules that keep replicas of different
// versions from diverging silently, as Consul's FSM does:
//
//   - The type byte's high bit (IgnorableFlag) marks a command that a
//     replica which does not know it may skip: something no other state
//     depends on (a hint, an informational record). Its handler is
//     registered under the type without the flag.
//   - A replica that meets an unknown type without the flag, or a payload
//     it cannot decode, stops (FailStop) instead of applying the rest of
//     the log without it: the entry passed the leader's Validate, so the
//     leader runs a newer version than this replica, and this replica must
//     be upgraded. It logs one line naming the entry's index and type.
//
// Both rules hold once the log's version (State.LogVersion, raised by the
// LeaderElected command every new leader writes) is LogVersionValidated
// or later. Entries of older logs were not validated before they entered
// the log (a v1 leader logged junk as it came), and v1 replicas refused
// them as no-ops: so do replicas now, or a replica replaying an old log
// would stop where its peers went on.
const IgnorableFlag CommandType = 0x80

// Log versions: which rules Apply follows for an entry. The log's version
// is part of the state (State.LogVersion) so that every replica applies
// an entry under the same rules, whatever version of meshd it runs:
//
//	0, 1  entries written before versions existed (v1): malformed and
//	      unknown entries are refused no-ops, Finish may lack an attempt,
//	      Grant checks only the slot limits, no events are recorded.
//	2     every command was validated by the leader before the log; an
//	      entry this replica cannot apply stops it (fail-stop); Finish needs
//	      its attempt; Grant re-checks the destination; events and
//	      retention.
const (
	LogVersionValidated = 2
	// LogVersion is the version this code writes in LeaderElected.
	LogVersion = 2
)

// ErrStopped marks the error of every Apply after this replica stopped
// (FailStop): it applies nothing more until it is upgraded and restarted.
var ErrStopped = errors.New("replica stopped")

// StopError says why a replica stopped: which entry, of what type.
type StopError struct {
	Index  uint64
	Type   byte
	Reason string
}

func (e *StopError) Error() string {
	return fmt.Sprintf("%v: log entry %d (command type %d, %s) %s: it was written by a newer hostmesh than this replica runs; upgrade this host",
		ErrStopped, e.Index, e.Type, CommandType(e.Type), e.Reason)
}

// Unwrap makes errors.Is(err, ErrStopped) true.
func (e *StopError) Unwrap() error { return ErrStopped }

// errUnknownType and errIgnored classify an entry apply could not hand to
// a handler.
var (
	errUnknownType = fmt.Errorf("%w: unknown command type", ErrMalformed)
	errIgnored     = errors.New("ignorable command of an unknown type")
)

var commandNames = map[CommandType]string{
	CmdUpsertHost:     "UpsertHost",
	CmdSetHostState:   "SetHostState",
	CmdRemoveHost:     "RemoveHost",
	CmdSyncVMs:        "SyncVMs",
	CmdEnqueue:        "Enqueue",
	CmdGrant:          "Grant",
	CmdProgress:       "Progress",
	CmdFinish:         "Finish",
	CmdCancel:         "Cancel",
	CmdSetCluster:     "SetCluster",
	CmdStartDrain:     "StartDrain",
	CmdEndDrain:       "EndDrain",
	CmdActivate:       "Activate",
	CmdReshare:        "Reshare",
	CmdLeaderElected:  "LeaderElected",
	CmdUnsettled:      "Unsettled",
	CmdSetVM:          "SetVM",
	CmdCreateAffinity: "CreateAffinity",
	CmdDeleteAffinity: "DeleteAffinity",
	CmdBalanceNote:    "BalanceNote",
	CmdSetCPUBaseline: "SetCPUBaseline",
}

// String names a command type for logs; an ignorable one says so.
func (t CommandType) String() string {
	base := t &^ IgnorableFlag
	name, ok := commandNames[base]
	if !ok {
		name = "unknown-" + strconv.Itoa(int(base))
	}
	if t&IgnorableFlag != 0 {
		name += "(ignorable)"
	}
	return name
}

// apply runs one entry against s: it finds the handler of the entry's
// type (without the ignorable flag) and runs it. An unknown ignorable type
// returns errIgnored; an unknown one errUnknownType.
func apply(s *State, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrMalformed)
	}
	t := CommandType(data[0])
	h, ok := handlers[t&^IgnorableFlag]
	switch {
	case ok:
		return h(s, data[1:])
	case t&IgnorableFlag != 0:
		return nil, errIgnored
	}
	return nil, fmt.Errorf("%w %d", errUnknownType, data[0])
}
