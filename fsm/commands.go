package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CommandType is the first byte of every Raft log entry; it names the command
// so Apply can look up its handler (as Consul's FSM does).
type CommandType byte

// The commands. Values are persisted in the Raft log: never renumber them.
const (
	CmdUpsertHost   CommandType = 1
	CmdSetHostState CommandType = 2
	CmdRemoveHost   CommandType = 3
	CmdSyncVMs      CommandType = 4
	CmdEnqueue      CommandType = 5
	CmdGrant        CommandType = 6
	CmdProgress     CommandType = 7
	CmdFinish       CommandType = 8
	CmdCancel       CommandType = 9
	CmdSetCluster   CommandType = 10
	CmdStartDrain   CommandType = 11
	CmdEndDrain     CommandType = 12
	CmdActivate     CommandType = 13
	CmdReshare      CommandType = 14
	// CmdLeaderElected is written by every new leader first; it raises
	// the log's version (see LogVersion).
	CmdLeaderElected CommandType = 15
	// CmdUnsettled records why a Running migration's outcome is not known.
	CmdUnsettled CommandType = 16
	// Placement's commands start at 24, leaving 16 to 23 to the streams
	// that add theirs at the same time (truth, acl).
	CmdSetVM          CommandType = 24
	CmdCreateAffinity CommandType = 25
	CmdDeleteAffinity CommandType = 26
)

// LeaderElected is the first command of every new leader: it records the
// change of leader and raises the log's version to the one the leader
// writes, from which entry on the rules of that version hold on every
// replica (see LogVersion).
type LeaderElected struct {
	Leader  string    `json:"leader"`
	Version int       `json:"version"`
	At      time.Time `json:"at"`
}

// ErrMalformed marks a command that cannot be decoded or fails Validate;
// it never enters the log, and in an old log it changes nothing.
var ErrMalformed = errors.New("malformed command")

// ErrRejected marks a well-formed command that the current state refuses
// (unknown VM, slot limit, wrong state...). It changes nothing.
var ErrRejected = errors.New("command rejected")

// UpsertHost records a host's gossiped facts. A new host starts Up.
type UpsertHost struct {
	Facts HostFacts `json:"facts"`
	// At is when the command was written (the event log's time).
	At time.Time `json:"at,omitempty"`
}

// SetHostState moves a host to a lifecycle state.
type SetHostState struct {
	Host   string    `json:"host"`
	State  HostState `json:"state"`
	Reason string    `json:"reason,omitempty"`
	// At is when the command was written (the event log's time).
	At time.Time `json:"at,omitempty"`
}

// RemoveHost forgets a host that left the mesh; it must run no VMs (and,
// from log version 2 on, take part in no unfinished migration). Its last
// drain goes with it. The leader writes it for a Left host once
// Config.LeftHostGrace passed.
type RemoveHost struct {
	Host string `json:"host"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
	// At is when the command was written (the event log's time).
	At time.Time `json:"at,omitempty"`
}

// SyncVMs replaces the inventory of one host with what its hypervisor reports.
type SyncVMs struct {
	Host string `json:"host"`
	VMs  []VM   `json:"vms"`
	// Index is the Raft index the host had applied when it read its
	// hypervisor: what the report says about a VM moved by a later entry
	// is out of date (see VM.MovedIndex).
	Index uint64    `json:"index,omitempty"`
	At    time.Time `json:"at,omitempty"`
}

// Enqueue asks to migrate a VM. Dest empty lets placement choose.
type Enqueue struct {
	// VM is the VM's UUID (the API resolves names before it proposes);
	// a name that one VM has is accepted too, as v1 logs hold.
	VM           string `json:"vm"`
	Dest         string `json:"dest,omitempty"`
	Policy       string `json:"policy,omitempty"`
	BandwidthMiB uint64 `json:"bandwidth_mib,omitempty"`
	// Parallel is the number of connections asked for; 0: the cluster's.
	Parallel int `json:"parallel,omitempty"`
	// Drain names the host whose drain asks for this migration.
	Drain string    `json:"drain,omitempty"`
	At    time.Time `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// Grant gives a queued migration its slots and destination: it becomes Running.
type Grant struct {
	ID           string    `json:"id"`
	Dest         string    `json:"dest"`
	BandwidthMiB uint64    `json:"bandwidth_mib"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at"`
	// Reshare lowers the caps of migrations already running in an
	// auto-bandwidth cluster in the same entry, so the granted caps never
	// add up to more than the migration network's capacity.
	Reshare []Share `json:"reshare,omitempty"`
}

// Share is one running migration's bandwidth cap in MiB/s.
type Share struct {
	ID           string `json:"id"`
	BandwidthMiB uint64 `json:"bandwidth_mib"`
}

// Reshare sets the caps of running migrations, e.g. raising the others'
// when one of an auto-bandwidth cluster's migrations ends. Listed
// migrations that are no longer running are left alone: they ended between
// the plan and the commit.
type Reshare struct {
	Shares []Share `json:"shares"`
}

// ProgressUpdate records a job-stats sample from the source host.
type ProgressUpdate struct {
	ID string `json:"id"`
	// Attempt is the placement attempt the sample belongs to; a sample of an
	// earlier attempt is refused.
	Attempt  int      `json:"attempt,omitempty"`
	Progress Progress `json:"progress"`
}

// Finish ends a migration. With Retry set on a failure, an unpinned
// migration goes back to the queue once to try another destination.
type Finish struct {
	ID string `json:"id"`
	// Attempt, when set, must be the migration's current attempt: a late
	// report of an attempt the leader already ended must not end the retry.
	Attempt    int            `json:"attempt,omitempty"`
	State      MigrationState `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	DowntimeMs int64          `json:"downtime_ms,omitempty"`
	Retry      bool           `json:"retry,omitempty"`
	At         time.Time      `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// Unsettled records that a Running migration's outcome is not known yet,
// and why (Migration.Unsettled); an empty Reason clears it. Alarm raises
// the migration-unsettled alarm about its VM (the hypervisors disagree:
// the VM runs on both Hosts, or on neither); without it the alarm clears.
// The source writes it while it settles a job it found ended after a
// restart, or waits to resume a broken post-copy; the leader while it
// settles a migration no one reports.
type Unsettled struct {
	ID      string    `json:"id"`
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason,omitempty"`
	Alarm   bool      `json:"alarm,omitempty"`
	Hosts   []string  `json:"hosts,omitempty"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor,omitempty"`
}

// Cancel stops a migration: a queued one at once, a running one once its
// source aborts the job and reports Finish.
type Cancel struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// SetCluster stores a cluster's limits and defaults.
type SetCluster struct {
	Cluster Cluster `json:"cluster"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
	// At is when the command was written (the event log's time).
	At time.Time `json:"at,omitempty"`
}

// StartDrain puts a host in PreparingForMaintenance and queues a migration for
// each of its VMs in the same log entry, so a drain is never half-queued.
type StartDrain struct {
	Host   string    `json:"host"`
	Reason string    `json:"reason"`
	Policy string    `json:"policy,omitempty"`
	At     time.Time `json:"at"`
	// PredictedSeconds is the drain's predicted time, from its plan.
	PredictedSeconds float64 `json:"predicted_seconds,omitempty"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// EndDrain closes a drain: done → Maintenance, cancelled → Up (queued
// migrations of the drain are cancelled), stuck → stays PreparingForMaintenance.
type EndDrain struct {
	Host  string    `json:"host"`
	State string    `json:"state"`
	At    time.Time `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// Activate brings a host out of maintenance (or a stuck drain) back to Up.
type Activate struct {
	Host string `json:"host"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
	// At is when the command was written (the event log's time).
	At time.Time `json:"at,omitempty"`
}

// Encode builds a log entry: the type byte followed by the JSON payload.
func Encode(t CommandType, payload any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	if err := json.NewEncoder(&buf).Encode(payload); err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	return buf.Bytes(), nil
}

// decode reads a payload strictly: unknown fields or trailing data mean the
// entry was not written by this version's Encode, so it is refused whole.
func decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return nil
}

func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}
