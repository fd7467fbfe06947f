package migrate

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Names of the convergence policies, as oVirt names its migration policies.
const (
	PolicyMinimalDowntime = "minimal-downtime"
	PolicyPostCopy        = "post-copy"
	PolicySuspendWorkload = "suspend-workload"
	PolicyPrecopy         = "precopy"
)

// Policy says how a migration is started and what the monitor (Watch) does
// each time it stalls. Stalls are counted from 1; on stall k the monitor takes
// the first of these that applies:
//
//  1. PostCopyAfterStalls > 0 and k ≥ PostCopyAfterStalls: switch to post-copy
//     (once; after that the migration cannot stall or be aborted).
//  2. k ≤ len(DowntimeSteps): raise the allowed downtime to DowntimeSteps[k-1].
//  3. FinalDowntime > 0 and not yet set: raise the allowed downtime to it.
//     With FitFinalDowntime it is instead what the remaining data takes at
//     the job's current rate (× 1.5 + 0.5 s), at most FinalDowntime: QEMU
//     then pauses the guest itself at its next check and sends the rest,
//     and its own downtime measures the pause.
//  4. SuspendWhenExhausted and not yet suspended: pause the guest on the
//     source (Job.Suspend) so that its memory stops changing and pre-copy
//     completes; the destination runs it on. The pause counts in the
//     reported downtime, and a job that fails after it leaves the guest
//     running on its source again.
//  5. AbortOnExhausted: abort with ErrNotConverging (the guest stays put).
//
// Otherwise the stall is only counted; the progress and completion timeouts
// still apply to every policy, except with SuspendWhenExhausted: reaching
// either limit before the steps ran out pauses the guest instead of
// aborting (the policy promises the move), and a suspended guest is no
// longer held to them (aborting then would have paused it for nothing): its
// copy must instead keep falling (MonitorConfig.SuspendedTimeout).
type Policy struct {
	Name        string
	Description string
	// InitialDowntime is the allowed switch-over pause the job starts with.
	InitialDowntime time.Duration
	// DowntimeSteps are the allowed downtimes of stalls 1, 2, …
	DowntimeSteps []time.Duration
	// AutoConverge lets the hypervisor throttle the guest's vCPUs.
	AutoConverge bool
	// AllowPostCopy starts the job so that it can switch to post-copy.
	AllowPostCopy bool
	// PostCopyAfterStalls switches to post-copy on that stall; 0 never does.
	PostCopyAfterStalls int
	// FinalDowntime is set once the steps are exhausted, instead of aborting.
	FinalDowntime time.Duration
	// FitFinalDowntime fits the final downtime to the remaining data (see
	// above), FinalDowntime being its upper bound.
	FitFinalDowntime bool
	// SuspendWhenExhausted pauses the guest on the first stall no step or
	// final downtime covers, instead of aborting: a guest that dirties
	// memory faster than the link sends it still moves, at the price of a
	// pause of about its dirty working set over the bandwidth.
	SuspendWhenExhausted bool
	// AbortOnExhausted aborts on the first stall no step or final downtime
	// covers.
	AbortOnExhausted bool
}

// ovirtSteps are oVirt's minimal-downtime steps (vdsm: 100 ms raised to
// 500 ms in five steps).
var ovirtSteps = []time.Duration{
	150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond,
	400 * time.Millisecond, 500 * time.Millisecond,
}

// policies are the built-in policies, in the order PolicyNames lists them.
var policies = []Policy{
	{
		Name:             PolicyMinimalDowntime,
		Description:      "start at 100ms downtime with auto-converge, raise it on stalls to 500ms, then abort",
		InitialDowntime:  100 * time.Millisecond,
		DowntimeSteps:    ovirtSteps,
		AutoConverge:     true,
		AbortOnExhausted: true,
	},
	{
		Name:                PolicyPostCopy,
		Description:         "like minimal-downtime, but switch to post-copy on the second stall",
		InitialDowntime:     100 * time.Millisecond,
		DowntimeSteps:       ovirtSteps[:1],
		AutoConverge:        true,
		AllowPostCopy:       true,
		PostCopyAfterStalls: 2,
	},
	{
		// Before, this policy's last resort was a 5 s allowed downtime,
		// which a guest dirtying faster than the link never met (bench:
		// 0 of 5 moved at 24 MiB/s dirtying over 8 MiB/s). Pausing the
		// guest always converges: nothing is dirtied while it stands.
		Name:                 PolicySuspendWorkload,
		Description:          "like minimal-downtime, then a downtime fitted to the remaining data (QEMU pauses the guest), then the guest paused until pre-copy completes; the pause counts as downtime",
		InitialDowntime:      100 * time.Millisecond,
		DowntimeSteps:        ovirtSteps,
		AutoConverge:         true,
		FinalDowntime:        60 * time.Second,
		FitFinalDowntime:     true,
		SuspendWhenExhausted: true,
	},
	{
		// What an auto migration runs when no prediction could be made
		// (no dirty rate sampled); with one, AutoPolicy replaces it.
		Name:                PolicyAuto,
		Description:         "predict from the dirty rate sampled before the start: pre-copy, auto-converge or post-copy (post-copy the last resort of each)",
		InitialDowntime:     100 * time.Millisecond,
		DowntimeSteps:       ovirtSteps,
		AutoConverge:        true,
		AllowPostCopy:       true,
		PostCopyAfterStalls: len(ovirtSteps) + 1,
	},
	{
		Name:            PolicyPrecopy,
		Description:     "plain pre-copy at QEMU's 300ms default downtime, no actions (the baseline)",
		InitialDowntime: 300 * time.Millisecond,
	},
}

// PolicyNames lists the valid policy names, default first.
func PolicyNames() []string {
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = p.Name
	}
	return names
}

// PolicyByName returns the named policy; "" is the default, minimal-downtime.
// The result is a copy the caller may change.
func PolicyByName(name string) (Policy, error) {
	if name == "" {
		name = PolicyMinimalDowntime
	}
	for _, p := range policies {
		if p.Name == name {
			p.DowntimeSteps = slices.Clone(p.DowntimeSteps)
			return p, nil
		}
	}
	return Policy{}, fmt.Errorf("unknown migration policy %q (valid: %s)", name, strings.Join(PolicyNames(), ", "))
}

// Params returns base with the policy's starting settings: allowed downtime,
// auto-converge and whether post-copy may be used later.
func (p Policy) Params(base Params) Params {
	base.MaxDowntime = p.InitialDowntime
	base.AutoConverge = p.AutoConverge
	base.AllowPostCopy = p.AllowPostCopy
	return base
}
