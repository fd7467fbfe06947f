package fsm

import (
	"slices"
	"sort"
	"time"
)

// Retention of finished migrations: the state holds the queue and the
// recent history, not every migration ever run (issue 10: the state only
// grew). A finished migration is forgotten once MaxFinished newer ones
// finished, or RetainFinished after the log's time (State.Time, the latest
// time a command carried) passed its end, whichever comes first. Apply
// prunes with the command's time, so every replica forgets the same ones.
// The event log keeps the story of the last MaxEvents changes besides.
const (
	// MaxFinished bounds the history: at about 700 bytes a migration it
	// takes 1.4 MiB of every replica and snapshot, and holds a drain of
	// 2,000 VMs whole.
	MaxFinished = 2000
	// RetainFinished is how long a finished migration is kept at most.
	RetainFinished = 7 * 24 * time.Hour
)

// finished records that migration id ended and forgets what the
// retention no longer keeps. It runs under log version 2 only: a v1 log's
// replicas kept everything.
func (s *State) finished(id string) {
	if !s.v2() {
		return
	}
	s.History = append(s.History, id)
	s.prune()
}

// prune drops the oldest finished migrations beyond MaxFinished or older
// than RetainFinished.
func (s *State) prune() {
	cutoff := s.Time.Add(-RetainFinished)
	n := 0
	for n < len(s.History) {
		m := s.Migrations[s.History[n]]
		if len(s.History)-n <= MaxFinished && (m == nil || !m.EndedAt.Before(cutoff)) {
			break
		}
		delete(s.Migrations, s.History[n])
		n++
	}
	if n > 0 {
		s.History = slices.Delete(s.History, 0, n)
	}
}

// buildHistory orders the finished migrations of a v1 state (which kept
// no history) by their end, then number, so that the retention applies to
// them from the log's version 2 on.
func (s *State) buildHistory() {
	s.History = s.History[:0]
	for id, m := range s.Migrations {
		if m.State.Final() {
			s.History = append(s.History, id)
		}
	}
	sort.Slice(s.History, func(i, j int) bool {
		a, b := s.Migrations[s.History[i]], s.Migrations[s.History[j]]
		if !a.EndedAt.Equal(b.EndedAt) {
			return a.EndedAt.Before(b.EndedAt)
		}
		x, _ := migrationNumber(a.ID)
		y, _ := migrationNumber(b.ID)
		return x < y
	})
	s.prune()
}
