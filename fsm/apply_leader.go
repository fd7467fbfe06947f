package fsm

import "fmt"

// applyLeaderElected raises the log's version to the new leader's: from
// this entry on, every replica applies entries under that version's rules
// (see LogVersion). A leader of an older version never lowers it.
func applyLeaderElected(s *State, data []byte) (any, error) {
	var c LeaderElected
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if c.Leader == "" || c.Version < 1 {
		return nil, rejectf("leader elected: needs a leader and a version (got %q, %d)", c.Leader, c.Version)
	}
	upgrade := s.LogVersion < LogVersionValidated && c.Version >= LogVersionValidated
	if upgrade {
		s.upgradeToV2()
	}
	s.LogVersion = max(s.LogVersion, c.Version)
	s.tick(c.At)
	if upgrade {
		s.buildHistory()
	}
	s.Leader = c.Leader
	s.emit(Event{Time: c.At, Actor: "host " + c.Leader, Kind: EventLeaderElected, Hosts: []string{c.Leader},
		Message: fmt.Sprintf("%s is the leader (log version %d)", c.Leader, s.LogVersion)})
	return nil, nil
}

// upgradeToV2 gives the unfinished migrations of a v1 log their VM's
// UUID, which v1 did not record: from now on they follow their VM by it.
// Finished ones keep only the name, as v1 recorded them.
func (s *State) upgradeToV2() {
	for _, id := range s.Queue {
		m := s.Migrations[id]
		if m == nil || m.VMUUID != "" {
			continue
		}
		if vm := s.VMOf(m); vm != nil {
			m.VMUUID = vm.UUID
		}
	}
}
