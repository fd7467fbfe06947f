package fsm

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
	s.LogVersion = max(s.LogVersion, c.Version)
	return nil, nil
}
