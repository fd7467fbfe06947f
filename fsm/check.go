package fsm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInconsistent marks a state that breaks an invariant Apply keeps.
var ErrInconsistent = errors.New("inconsistent state")

// maxCheckErrors bounds the problems Check lists: a broken snapshot of
// 100,000 migrations must not produce a 100,000-line error.
const maxCheckErrors = 10

// Check verifies the invariants every sequence of Apply calls keeps, so a
// snapshot that breaks one was not written by this FSM (or was damaged)
// and must not replace a replica's state:
//   - no nil host, VM, migration, cluster or drain; every map key is its
//     object's name or ID;
//   - known host, migration and drain states;
//   - migration IDs are "m<N>" with N at most Seq (the next ID is free);
//   - the queue holds each unfinished migration exactly once, and only
//     those;
//   - a VM held by a migration is held by an unfinished one of that VM.
func (s *State) Check() error {
	var errs []string
	bad := func(format string, args ...any) {
		if len(errs) < maxCheckErrors {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	for k, h := range s.Hosts {
		switch {
		case h == nil:
			bad("host %q is null", k)
		case h.Name != k:
			bad("host %q is named %q", k, h.Name)
		case !validHostState(h.State):
			bad("host %q has unknown state %q", k, h.State)
		}
	}
	s.checkACL(bad)
	for k, c := range s.Clusters {
		if c == nil {
			bad("cluster %q is null", k)
		} else if c.Name != k {
			bad("cluster %q is named %q", k, c.Name)
		}
	}
	for k, d := range s.Drains {
		switch {
		case d == nil:
			bad("drain %q is null", k)
		case d.Host != k:
			bad("drain %q is of host %q", k, d.Host)
		case !validDrainState(d.State):
			bad("drain of %q has unknown state %q", k, d.State)
		}
	}
	for k, m := range s.Migrations {
		switch {
		case m == nil:
			bad("migration %q is null", k)
			continue
		case m.ID != k:
			bad("migration %q has ID %q", k, m.ID)
		case !validMigrationState(m.State):
			bad("migration %s has unknown state %q", k, m.State)
		}
		if n, ok := migrationNumber(k); !ok || n > s.Seq {
			bad("migration ID %q is not m1..m%d", k, s.Seq)
		}
	}
	queued := map[string]bool{}
	for _, id := range s.Queue {
		m := s.Migrations[id]
		switch {
		case queued[id]:
			bad("migration %s is queued twice", id)
		case m == nil:
			bad("queued migration %s does not exist", id)
		case m.State.Final():
			bad("queued migration %s is %s", id, m.State)
		}
		queued[id] = true
	}
	for k, m := range s.Migrations {
		if m != nil && validMigrationState(m.State) && !m.State.Final() && !queued[k] {
			bad("migration %s is %s but not in the queue", k, m.State)
		}
	}
	// From log version 2 on, the history lists every finished migration
	// once, or the retention would never forget some.
	inHistory := map[string]bool{}
	for _, id := range s.History {
		m := s.Migrations[id]
		switch {
		case inHistory[id]:
			bad("migration %s is twice in the history", id)
		case m == nil:
			bad("finished migration %s of the history does not exist", id)
		case !m.State.Final():
			bad("migration %s of the history is %s", id, m.State)
		}
		inHistory[id] = true
	}
	if s.v2() {
		for k, m := range s.Migrations {
			if m != nil && m.State.Final() && !inHistory[k] {
				bad("finished migration %s is not in the history", k)
			}
		}
	}
	for k, vm := range s.VMs {
		switch {
		case vm == nil:
			bad("vm %q is null", k)
			continue
		case k != vm.Key() && k != legacyPrefix+vm.Name:
			bad("vm %q (uuid %q, name %q) is not under its key", k, vm.UUID, vm.Name)
		}
		if vm.Migration == "" {
			continue
		}
		if m := s.Migrations[vm.Migration]; m == nil || m.State.Final() || m.VM != vm.Name || (m.VMUUID != "" && VMKey(m.VMUUID, m.VM) != k) {
			bad("vm %q is held by migration %s, which is not an unfinished migration of it", k, vm.Migration)
		}
	}
	if s.Events != nil {
		if err := s.Events.check(); err != nil {
			bad("events: %v", err)
		}
	}
	for k, vs := range s.VMSettings {
		if vs == nil {
			bad("settings of vm %q are null", k)
		}
	}
	for k, r := range s.Affinity {
		if r == nil {
			bad("affinity rule %q is null", k)
		} else if r.Name != k {
			bad("affinity rule %q is named %q", k, r.Name)
		}
	}
	for k, a := range s.Alarms {
		if a == nil {
			bad("alarm %q is null", k)
		} else if k != AlarmKey(a.Kind, a.VMUUID) {
			bad("alarm %q is of kind %q about %q", k, a.Kind, a.VMUUID)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInconsistent, strings.Join(errs, "; "))
}

func validMigrationState(st MigrationState) bool {
	switch st {
	case MigQueued, MigRunning, MigSucceeded, MigFailed, MigCancelled:
		return true
	}
	return false
}

func validDrainState(st string) bool {
	switch st {
	case DrainActive, DrainDone, DrainStuck, DrainCancelled:
		return true
	}
	return false
}

// migrationNumber parses the N of a migration ID "m<N>".
func migrationNumber(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, "m")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil && n > 0
}
