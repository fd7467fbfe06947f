package fsm

import (
	"encoding/json"
	"fmt"
	"io"
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
}

// New returns an FSM with empty state.
func New() *FSM {
	return &FSM{state: NewState(), changed: make(chan struct{})}
}

// Apply implements raft.FSM. It is deterministic: the same log gives the same
// state on every replica; times come from the commands, never the clock.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = l.Index
	v, err := apply(f.state, l.Data)
	if err == nil {
		// Progress samples and new bandwidth caps change no scheduling
		// decision, so they do not make the leader plan again.
		if t := CommandType(l.Data[0]); t != CmdProgress && t != CmdReshare {
			f.schedGen++
		}
		close(f.changed)
		f.changed = make(chan struct{})
	}
	return Result{Value: v, Err: err}
}

// apply runs one entry against s. Exported through ApplyTo for tests and the
// benchmarks that need the state machine without Raft.
func apply(s *State, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrMalformed)
	}
	h, ok := handlers[CommandType(data[0])]
	if !ok {
		return nil, fmt.Errorf("%w: unknown command type %d", ErrMalformed, data[0])
	}
	return h(s, data[1:])
}

// ApplyTo applies one encoded command to s directly, without Raft.
func ApplyTo(s *State, data []byte) (any, error) { return apply(s, data) }

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

// Snapshot implements raft.FSM: it only captures a copy; Persist does the I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	return &snapshot{data: b}, nil
}

// Restore implements raft.FSM: it replaces all state with the snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := NewState()
	if err := json.NewDecoder(rc).Decode(s); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	s.normalize()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
	f.schedGen++
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
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

type snapshot struct{ data []byte }

// Persist writes the captured state; on error it cancels the sink so Raft
// discards the partial snapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
