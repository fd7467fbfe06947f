package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
)

// SnapshotFormat is the version of the snapshot encoding this code writes:
//
//	1  the bare State as JSON (every snapshot before format versions)
//	2  {"format":2,"state":State}
//
// Restore reads every format up to SnapshotFormat and refuses a newer one,
// so a replica never restores a state it would misread.
const SnapshotFormat = 2

// ErrBadSnapshot marks a snapshot Restore refuses; the state stays as it was.
var ErrBadSnapshot = errors.New("bad snapshot")

// snapshotFile is the snapshot encoding of format 2.
type snapshotFile struct {
	Format int    `json:"format"`
	State  *State `json:"state"`
}

// Snapshot implements raft.FSM: it only captures a copy of the state
// under the lock; Persist does the encoding and the I/O, so Apply waits
// for a copy, not for a disk.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c := f.state.Clone()
	c.Events = f.state.Events.clone()
	return &snapshot{state: c}, nil
}

type snapshot struct{ state *State }

// Persist writes the captured state; on error it cancels the sink so Raft
// discards the partial snapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotFile{Format: SnapshotFormat, State: s.state}); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// Restore implements raft.FSM: it decodes and checks the snapshot into a
// new state and only then replaces the current one. A snapshot that does
// not decode or fails State.Check changes nothing: `null` or a null host
// must never wipe or crash a replica. Raft then keeps the replica as it was
// (a follower) or refuses to start (a snapshot on disk), which says why.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		f.log.Error("fsm: refused a snapshot; the state stays as it was", "err", err)
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.grantCheck = f.grantCheck
	s.indexVMs()
	f.state = s
	f.schedGen++
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// DecodeSnapshot reads a snapshot of any known format into a checked state.
func DecodeSnapshot(b []byte) (*State, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, fmt.Errorf("%w: empty or null", ErrBadSnapshot)
	}
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	format, raw := 1, b
	if head.Format != nil {
		format = *head.Format
		switch {
		case format > SnapshotFormat:
			return nil, fmt.Errorf("%w: format %d; this version reads formats 1 to %d (a newer hostmesh wrote it: upgrade this host)",
				ErrBadSnapshot, format, SnapshotFormat)
		case format < 2:
			return nil, fmt.Errorf("%w: unknown format %d", ErrBadSnapshot, format)
		}
		var file struct {
			Format int             `json:"format"`
			State  json.RawMessage `json:"state"`
		}
		if err := strictJSON(b, &file); err != nil {
			return nil, fmt.Errorf("%w: format %d: %v", ErrBadSnapshot, format, err)
		}
		raw = bytes.TrimSpace(file.State)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			return nil, fmt.Errorf("%w: format %d: no state", ErrBadSnapshot, format)
		}
	}
	s := NewState()
	if err := strictJSON(raw, s); err != nil {
		return nil, fmt.Errorf("%w: format %d state: %v", ErrBadSnapshot, format, err)
	}
	s.normalize()
	if format == 1 {
		s.rekeyV1()
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("%w: format %d state: %w", ErrBadSnapshot, format, err)
	}
	return s, nil
}

// rekeyV1 keys a v1 state's VMs by UUID (v1 keyed them by name). Names
// are taken in order; a UUID already taken by an earlier name (a cloned
// domain) leaves the later VM under its name key, so no VM is lost.
func (s *State) rekeyV1() {
	names := make([]string, 0, len(s.VMs))
	for k := range s.VMs {
		names = append(names, k)
	}
	sort.Strings(names)
	vms := make(map[string]*VM, len(s.VMs))
	for _, name := range names {
		vm := s.VMs[name]
		if vm == nil {
			vms[name] = nil // Check refuses it
			continue
		}
		k := vm.Key()
		if _, taken := vms[k]; taken {
			k = legacyPrefix + vm.Name
		}
		vms[k] = vm
	}
	s.VMs = vms
}

// strictJSON decodes one JSON value refusing unknown fields (a newer
// writer's) and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
