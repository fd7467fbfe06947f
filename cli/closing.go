package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/api"
)

// The closing line of `meshctl migrate --wait` is read by people, and by the
// end-to-end tests and the benchmarks: it is written and parsed here only.

// movedLine matches the closing line of a successful migration.
var movedLine = regexp.MustCompile(`(?m)^(m\d+): (\S+) moved (\S+) → (\S+) in (\S+), (?:post-copy from (\S+), )?downtime (\d+) ms(?: \(post-copy phase (\S+):.*\))?$`)

// Moved is what the closing line of a successful migration says.
type Moved struct {
	Line             string
	ID, VM, From, To string
	// Total runs from the grant to the end; Downtime is the switch-over
	// pause QEMU reports.
	Total, Downtime time.Duration
	// PostCopy: from PostCopyAt (job time) the guest ran on the destination,
	// pulling the pages it lacked, for PostCopyPhase.
	PostCopy                  bool
	PostCopyAt, PostCopyPhase time.Duration
}

// formatMoved writes the closing line of a successful migration.
func formatMoved(m api.Migration) string {
	total := m.EndedAt.Sub(m.StartedAt)
	if m.StartedAt.IsZero() {
		total = 0
	}
	head := fmt.Sprintf("%s: %s moved %s → %s in %s", m.ID, m.VM, m.Source, m.Dest, total.Round(time.Millisecond))
	p := m.Progress
	if !p.PostCopy {
		return fmt.Sprintf("%s, downtime %d ms", head, m.DowntimeMs)
	}
	// Once switched to post-copy the guest runs on the destination,
	// stalling on each page it touches that has not arrived yet, until the
	// job ends: that phase, not the switch-over pause QEMU calls downtime,
	// is what the guest feels.
	at := time.Duration(p.PostCopyAtMs) * time.Millisecond
	phase := time.Duration(p.ElapsedMs-p.PostCopyAtMs) * time.Millisecond
	return fmt.Sprintf("%s, post-copy from %s, downtime %d ms (post-copy phase %s: the guest ran on %s, pulling the pages it had not yet received)",
		head, at.Round(100*time.Millisecond), m.DowntimeMs, phase.Round(100*time.Millisecond), m.Dest)
}

// ParseMoved finds the closing line of a successful migration in the output
// of `meshctl migrate --wait`.
func ParseMoved(out string) (Moved, error) {
	mt := movedLine.FindStringSubmatch(out)
	if mt == nil {
		return Moved{}, fmt.Errorf("no closing line with total time and downtime in %q", out)
	}
	mv := Moved{Line: mt[0], ID: mt[1], VM: mt[2], From: mt[3], To: mt[4], PostCopy: mt[6] != ""}
	var err error
	if mv.Total, err = time.ParseDuration(mt[5]); err != nil {
		return Moved{}, fmt.Errorf("closing line %q: total time: %w", mt[0], err)
	}
	ms, err := strconv.Atoi(mt[7])
	if err != nil {
		return Moved{}, fmt.Errorf("closing line %q: downtime: %w", mt[0], err)
	}
	mv.Downtime = time.Duration(ms) * time.Millisecond
	if mv.PostCopy {
		if mv.PostCopyAt, err = time.ParseDuration(mt[6]); err != nil {
			return Moved{}, fmt.Errorf("closing line %q: post-copy start: %w", mt[0], err)
		}
		if mv.PostCopyPhase, err = time.ParseDuration(mt[8]); err != nil {
			return Moved{}, fmt.Errorf("closing line %q: post-copy phase: %w", mt[0], err)
		}
	}
	return mv, nil
}
