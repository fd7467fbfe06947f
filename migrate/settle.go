package migrate

import "fmt"

// Verdict is what the two hypervisors of a migration say it became, read
// after its job may have ended without anyone watching (the source meshd
// was down, or the leader heard nothing for too long).
type Verdict string

// Verdicts of Settle.
const (
	// VerdictRunning: the source still runs the migration job: watch it.
	VerdictRunning Verdict = "running"
	// VerdictMoved: the guest runs on the destination and no longer on the
	// source: the migration succeeded.
	VerdictMoved Verdict = "moved"
	// VerdictStayed: the guest is on the source and not on the destination:
	// the migration failed before the switch-over, and may be tried again.
	VerdictStayed Verdict = "stayed"
	// VerdictPostCopyPaused: the post-copy stream broke and both copies
	// exist: the guest waits, paused, for the migration to resume.
	VerdictPostCopyPaused Verdict = "post-copy-paused"
	// VerdictLost: the post-copy stream broke and one side's copy is gone:
	// the guest's memory is incomplete everywhere.
	VerdictLost Verdict = "lost"
	// VerdictBoth: the guest runs on both hosts.
	VerdictBoth Verdict = "both"
	// VerdictNeither: the guest runs on neither host.
	VerdictNeither Verdict = "neither"
	// VerdictUnknown: a host that matters could not be read; ask again.
	VerdictUnknown Verdict = "unknown"
)

// Settlement is a verdict and the facts it rests on, in words.
type Settlement struct {
	Verdict Verdict
	Reason  string
}

// Final reports whether the verdict ends the migration: moved, stayed and
// lost do; running, a paused post-copy (it resumes) and unknown do not;
// both and neither need an operator (an alarm), never a guess.
func (v Verdict) Final() bool {
	return v == VerdictMoved || v == VerdictStayed || v == VerdictLost
}

// Settle decides what became of a migration of one guest from the
// hypervisors' reports: src from the source, dst from the destination, nil
// for a host that could not be read. The rules, in order:
//
//   - the source runs a migration job (and its post-copy has not broken):
//     running;
//   - post-copy broke: paused while both copies exist, lost once either is
//     gone; a post-copy with no job on the source is between two states
//     (unknown), unless the source's copy is gone (lost);
//   - the guest runs on the destination (not as an incoming copy, not in a
//     broken post-copy): moved when the source's copy does not run (libvirt
//     stops it at the switch-over), both when it still does;
//   - the guest runs on the source, not on the destination: stayed;
//   - it runs on neither: stayed when the source still has it (shut off
//     there), else neither.
//
// A host that could not be read makes the verdict unknown unless the other
// host's report settles it alone: a guest running normally on the
// destination has switched over; one running on the source with no job,
// or absent from a destination that has no incoming copy either, never
// did.
func Settle(src, dst *DomainStatus, srcHost, dstHost string) Settlement {
	if src != nil && src.Migrating() && !src.PostCopyFailed {
		return Settlement{VerdictRunning, fmt.Sprintf("%s still runs the migration job (%s)", srcHost, describe(src))}
	}
	if (src != nil && src.PostCopyFailed) || (dst != nil && dst.PostCopyFailed) {
		switch {
		case src == nil || dst == nil:
			return Settlement{VerdictUnknown, fmt.Sprintf("post-copy broke; %s: %s, %s: %s", srcHost, describe(src), dstHost, describe(dst))}
		case src.Exists && dst.Exists:
			return Settlement{VerdictPostCopyPaused, fmt.Sprintf("post-copy broke: the guest waits on %s for the pages %s still holds", dstHost, srcHost)}
		case !src.Exists:
			return Settlement{VerdictLost, fmt.Sprintf("post-copy broke and %s no longer has the guest's copy: the guest on %s lacks the pages it held", srcHost, dstHost)}
		default:
			return Settlement{VerdictLost, fmt.Sprintf("post-copy broke and %s no longer has the guest: the pages it had received are gone, the copy on %s is stale", dstHost, srcHost)}
		}
	}
	if (src != nil && src.PostCopy) || (dst != nil && dst.PostCopy) {
		if src != nil && !src.Exists {
			return Settlement{VerdictLost, fmt.Sprintf("%s no longer has the guest while %s runs it in post-copy (%s): the pages it held are gone", srcHost, dstHost, describe(dst))}
		}
		return Settlement{VerdictUnknown, fmt.Sprintf("post-copy under way without a job on the source; %s: %s, %s: %s", srcHost, describe(src), dstHost, describe(dst))}
	}
	dstRuns := dst != nil && dst.Runs()
	srcRuns := src != nil && src.Runs()
	switch {
	case dstRuns && src == nil:
		return Settlement{VerdictMoved, fmt.Sprintf("the guest runs on %s (%s); %s could not be read, and libvirt stops the source's copy at the switch-over", dstHost, describe(dst), srcHost)}
	case dstRuns && srcRuns:
		return Settlement{VerdictBoth, fmt.Sprintf("the guest runs on both %s (%s) and %s (%s)", srcHost, describe(src), dstHost, describe(dst))}
	case dstRuns:
		return Settlement{VerdictMoved, fmt.Sprintf("the guest runs on %s (%s) and %s has %s", dstHost, describe(dst), srcHost, describe(src))}
	case src == nil && dst != nil && !dst.Exists:
		return Settlement{VerdictStayed, fmt.Sprintf("%s has no copy of the guest and no incoming migration: it never switched over (%s could not be read)", dstHost, srcHost)}
	case src == nil:
		return Settlement{VerdictUnknown, fmt.Sprintf("%s could not be read; %s: %s", srcHost, dstHost, describe(dst))}
	case srcRuns:
		return Settlement{VerdictStayed, fmt.Sprintf("the guest runs on %s (%s) with no migration job, and %s has %s", srcHost, describe(src), dstHost, describe(dst))}
	case dst == nil:
		return Settlement{VerdictUnknown, fmt.Sprintf("%s could not be read; %s: %s", dstHost, srcHost, describe(src))}
	case src.Exists:
		return Settlement{VerdictStayed, fmt.Sprintf("the guest is on %s (%s), not running, and %s has %s", srcHost, describe(src), dstHost, describe(dst))}
	default:
		return Settlement{VerdictNeither, fmt.Sprintf("the guest runs on neither %s (%s) nor %s (%s)", srcHost, describe(src), dstHost, describe(dst))}
	}
}

// describe words a status for a reason: "running (migrated)", "no domain",
// "unreachable".
func describe(s *DomainStatus) string {
	switch {
	case s == nil:
		return "unreachable"
	case !s.Exists:
		return "no domain"
	}
	d := s.State
	if s.Reason != "" {
		d += " (" + s.Reason + ")"
	}
	if s.Job != nil {
		d += ", job " + string(s.Job.Kind)
	}
	if s.Ended != nil && s.Ended.Outcome != JobCompleted {
		d += ", last job " + string(s.Ended.Outcome)
		if s.Ended.Error != "" {
			d += ": " + s.Ended.Error
		}
	}
	return d
}
