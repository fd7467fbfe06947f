package fsm

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	"github.com/hashicorp/raft"
)

// handler applies one decoded command to the state. It must validate
// everything before it mutates anything: a refused command leaves no trace.
type handler func(s *State, data []byte) (any, error)

var handlers = map[CommandType]handler{
	CmdUpsertHost:   applyUpsertHost,
	CmdSetHostState: applySetHostState,
	CmdRemoveHost:   applyRemoveHost,
	CmdSyncVMs:      applySyncVMs,
	CmdEnqueue:      applyEnqueue,
	CmdGrant:        applyGrant,
	CmdProgress:     applyProgress,
	CmdFinish:       applyFinish,
	CmdCancel:       applyCancel,
	CmdSetCluster:   applySetCluster,
	CmdStartDrain:   applyStartDrain,
	CmdEndDrain:     applyEndDrain,
	CmdActivate:     applyActivate,
	CmdReshare:      applyReshare,

	CmdLeaderElected:  applyLeaderElected,
	CmdUnsettled:      applyUnsettled,
	CmdSetVM:          applySetVM,
	CmdCreateAffinity: applyCreateAffinity,
	CmdDeleteAffinity: applyDeleteAffinity,
	CmdBalanceNote:    applyBalanceNote,
	CmdSetCPUBaseline: applySetCPUBaseline,
}

// Result is what Apply returns for every entry: the value a command produced
// (a migration ID, the IDs a drain queued) or the reason it was refused.
type Result struct {
	Value any
	Err   error
}

// FSM is the raft.FSM of the mesh.
type FSM struct {
	mu      sync.RWMutex
	state   *State
	index   uint64
	changed chan struct{}
	// schedGen counts applied entries that can change a scheduling decision
	// (all but progress samples), so the leader re-plans only when needed.
	schedGen uint64

	log        *slog.Logger
	failStop   func(error)
	grantCheck GrantCheck
	// stopped is set once an entry stopped this replica: it applies
	// nothing after it.
	stopped error
}

// New returns an FSM with empty state. It logs to slog's default logger
// and stops the process on an entry it cannot apply (see SetFailStop).
func New() *FSM {
	s := NewState()
	s.indexVMs()
	return &FSM{state: s, changed: make(chan struct{}), log: slog.Default(), failStop: exitFailStop}
}

// SetLogger sets where the FSM logs skipped and refused entries. Call it
// before Raft starts.
func (f *FSM) SetLogger(l *slog.Logger) { f.log = l }

// SetGrantCheck sets the prerequisite checks a Grant must pass in Apply
// (log version 2 on); meshd sets migrate.GrantCheck. Call it before Raft
// starts; without one, Apply checks the slots, the pinned destination and
// the split-brain alarm only.
func (f *FSM) SetGrantCheck(c GrantCheck) { f.grantCheck = c }

// SetFailStop replaces what happens when an entry stops this replica
// (tests record it instead of exiting). Call it before Raft starts. After
// fn returns, Apply refuses every later entry with the same error.
func (f *FSM) SetFailStop(fn func(error)) { f.failStop = fn }

// exitFailStop exits: a replica that cannot apply an entry must not go on
// without it, and nothing in this process can fix that but an upgrade.
// Raft keeps the entry; the upgraded meshd applies it.
func exitFailStop(error) { os.Exit(1) }

// Apply implements raft.FSM. It is deterministic: the same log gives the same
// state on every replica; times come from the commands, never the clock.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped != nil {
		return Result{Err: f.stopped}
	}
	f.index = l.Index
	f.state.index, f.state.grantCheck = l.Index, f.grantCheck
	v, err := apply(f.state, l.Data)
	switch {
	case errors.Is(err, errIgnored):
		f.log.Warn("fsm: skipped an ignorable command of a type this version does not know",
			"index", l.Index, "type", l.Data[0])
		return Result{}
	case errors.Is(err, ErrMalformed) && f.state.LogVersion >= LogVersionValidated:
		var t byte
		if len(l.Data) > 0 {
			t = l.Data[0]
		}
		reason := "does not decode: " + err.Error()
		if errors.Is(err, errUnknownType) {
			reason = "has a type this version does not know"
		}
		f.stopped = &StopError{Index: l.Index, Type: t, Reason: reason}
		f.log.Error("fsm: stopping this replica", "err", f.stopped)
		f.failStop(f.stopped)
		return Result{Err: f.stopped}
	case errors.Is(err, ErrMalformed):
		// An entry of an old log that its leader did not validate: v1
		// replicas refused it, so does this one.
		f.log.Warn("fsm: refused a malformed entry of a log older than validation", "index", l.Index, "err", err)
	case err == nil:
		// Progress samples and new bandwidth caps change no scheduling
		// decision, so they do not make the leader plan again; a sample
		// that lends a slot (see Ending) does.
		if t := CommandType(l.Data[0]); t != CmdProgress && t != CmdReshare || v == (slotLent{}) {
			f.schedGen++
		}
		close(f.changed)
		f.changed = make(chan struct{})
	}
	return Result{Value: v, Err: err}
}

// ApplyTo applies one encoded command to s directly, without Raft, as the
// entry at index.
func ApplyTo(s *State, index uint64, data []byte) (any, error) {
	s.index = index
	return apply(s, data)
}

// State returns a deep copy of the current state.
func (f *FSM) State() *State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// Read runs fn with the live state under the read lock, for cheap lookups
// that must not copy the whole state. fn must not keep or modify it.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Changed returns a channel closed at the next successful Apply or Restore,
// so loops can wait for state changes instead of polling.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// SchedGen changes whenever an applied entry may change what the scheduler
// decides; progress samples, the bulk of the log during migrations, do not.
func (f *FSM) SchedGen() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.schedGen
}

// Index is the Raft index of the last applied entry.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// normalize makes nil maps empty after decoding an old or sparse snapshot.
func (s *State) normalize() {
	if s.Hosts == nil {
		s.Hosts = map[string]*Host{}
	}
	if s.VMs == nil {
		s.VMs = map[string]*VM{}
	}
	if s.Migrations == nil {
		s.Migrations = map[string]*Migration{}
	}
	if s.Clusters == nil {
		s.Clusters = map[string]*Cluster{}
	}
	if s.Drains == nil {
		s.Drains = map[string]*Drain{}
	}
	if s.Alarms == nil {
		s.Alarms = map[string]*Alarm{}
	}
	if s.VMSettings == nil {
		s.VMSettings = map[string]*VMSettings{}
	}
	if s.Affinity == nil {
		s.Affinity = map[string]*AffinityRule{}
	}
	if s.Events == nil {
		s.Events = newEventLog()
	}
	// Unmovable and Moved are omitted from JSON when empty: a drain
	// restored before its first move must still record one.
	for _, d := range s.Drains {
		if d == nil {
			continue
		}
		if d.Unmovable == nil {
			d.Unmovable = map[string]string{}
		}
		if d.Moved == nil {
			d.Moved = map[string]string{}
		}
	}
}
