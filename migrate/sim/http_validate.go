package sim

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hostmesh/hostmesh/fsm"
)

// Checks of the requests a sim host takes from its peers (decode calls
// them). A reserved VM ends up in this host's inventory, so it must pass
// the rules the replicated state applies to an inventory: a VM it would
// refuse there (no name, absurd memory) is refused here, before it is held.

// badRequestError is a request decode refused: 400, not the 409 of a
// refusal by the host's state.
type badRequestError struct{ error }

func (e badRequestError) Unwrap() error { return e.error }

// maxReservationID bounds a reservation ID ("SOURCE/VM/SEQ").
const maxReservationID = 1024

func checkID(id string) error {
	if id == "" {
		return errors.New("field \"id\" is required")
	}
	if len(id) > maxReservationID || !utf8.ValidString(id) {
		return fmt.Errorf("field \"id\": must be 1 to %d bytes of UTF-8", maxReservationID)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("field \"id\": control character %U", r)
		}
	}
	return nil
}

func (q reserveReq) validate() error {
	if err := checkID(q.ID); err != nil {
		return err
	}
	if err := fsm.CheckHostName(`field "source"`, q.Source); err != nil {
		return err
	}
	s := q.VM
	if s.MemoryMiB == 0 {
		return fmt.Errorf("vm %q: field \"MemoryMiB\" is required", s.Name)
	}
	if math.IsNaN(s.DirtyMiBps) || math.IsInf(s.DirtyMiBps, 0) || s.DirtyMiBps < 0 || s.DirtyMiBps > fsm.MaxBandwidthMiB {
		return fmt.Errorf("vm %q: field \"DirtyMiBps\" %v: must be 0 to %d", s.Name, s.DirtyMiBps, fsm.MaxBandwidthMiB)
	}
	if s.WorkingSetMiB > s.MemoryMiB {
		return fmt.Errorf("vm %q: field \"WorkingSetMiB\" %d: over its memory of %d MiB", s.Name, s.WorkingSetMiB, s.MemoryMiB)
	}
	// The VM as this host's inventory would report it.
	vm := fsm.VM{Name: s.Name, UUID: s.UUID, MemoryMiB: s.MemoryMiB, VCPUs: s.VCPUs, CPUModel: s.CPUModel,
		CPUFlags: s.CPUFlags, NICs: s.NICs, Disks: s.Disks, State: fsm.VMRunning}
	data, err := fsm.Encode(fsm.CmdSyncVMs, fsm.SyncVMs{Host: q.Source, VMs: []fsm.VM{vm}, At: time.Unix(1, 0)})
	if err == nil {
		err = fsm.Validate(data)
	}
	if err != nil {
		return fmt.Errorf("field \"vm\": %w", err)
	}
	return nil
}

func (q idReq) validate() error { return checkID(q.ID) }
