package migrate

import (
	"fmt"
	"math"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// PolicyAuto picks pre-copy, auto-converge or post-copy per migration from
// a prediction made before it starts (Predict): the guest's dirty rate,
// sampled on the source, against the bandwidth the migration was granted.
const PolicyAuto = "auto"

// Choices of the auto policy, as recorded in fsm.Prediction.Choice.
const (
	ChoicePrecopy      = "pre-copy"
	ChoiceAutoConverge = "auto-converge"
	ChoicePostCopy     = "post-copy"
)

// maxPredictedPasses bounds the pre-copy passes Predict counts: QEMU has no
// pass limit, but a pre-copy that needs more than this shrinks its
// remainder too slowly to call it converging.
const maxPredictedPasses = 30

// convergeRatio is the dirty rate, as a share of the bandwidth, under which
// pre-copy alone is predicted to converge comfortably; between it and 1 it
// converges slowly (every pass shrinks by less than half), and auto-converge
// throttling the guest makes it sure.
const convergeRatio = 0.5

// postCopySwitchDelay is how long auto's post-copy choice runs on after
// its first pass before it switches: the monitor acts on a stall of at
// least DefaultStallSamples samples in a new pass (2 s), and the second
// pass resends what the first left dirty meanwhile.
const postCopySwitchDelay = time.Duration(DefaultStallSamples) * DefaultMonitorInterval

// Predict models a pre-copy migration the way QEMU runs it: the first pass
// sends dataBytes (the guest's memory in use) at bwBps; each later pass sends
// what the guest dirtied meanwhile, at most dataBytes (a guest dirties only
// pages it uses: the lab's +137 % error came from bounding them by its whole
// memory); it switches over once a pass's remainder fits maxDowntime at
// bwBps. Pre-copy converges when the passes shrink (dirty rate below the
// bandwidth) to that threshold within maxPredictedPasses. TotalMs is the
// predicted time of the mode auto picks: the passes, or for post-copy the
// first pass, the stall the monitor waits for before it switches
// (postCopySwitchDelay) and the pull of what was dirtied during the first
// pass. dirtyBps 0 with sampled false means unknown: the prediction is one
// pass and no choice beyond the default.
func Predict(memBytes, dataBytes, dirtyBps, bwBps uint64, maxDowntime time.Duration, sampled bool) fsm.Prediction {
	return predict(memBytes, dataBytes, 0, dirtyBps, bwBps, maxDowntime, sampled)
}

// predict is Predict with the guest's dirty set known (dirtySetBytes > 0):
// what its writes cover, which bounds the later passes and the post-copy
// pull (the lab's guest rewrites a 32 MiB working set of its ~100 MiB in
// use: the pull is the working set, not the memory in use).
func predict(memBytes, dataBytes, dirtySetBytes, dirtyBps, bwBps uint64, maxDowntime time.Duration, sampled bool) fsm.Prediction {
	p := fsm.Prediction{MemBytes: memBytes, DataBytes: dataBytes, DirtyRateBps: dirtyBps, BandwidthBps: bwBps, Sampled: sampled}
	if dataBytes == 0 || dataBytes > memBytes {
		p.DataBytes = memBytes
	}
	bound := float64(p.DataBytes)
	if dirtySetBytes > 0 && dirtySetBytes < p.DataBytes {
		p.DirtySetBytes = dirtySetBytes
		bound = float64(dirtySetBytes)
	}
	if bwBps == 0 {
		return p // unlimited: nothing to predict against
	}
	b, r := float64(bwBps), float64(dirtyBps)
	first := float64(p.DataBytes) / b
	if !sampled {
		p.TotalMs = int64(first * 1000)
		p.Passes = 1
		p.Choice = ChoiceAutoConverge
		return p
	}
	thr := b * maxDowntime.Seconds()
	pass, total := float64(p.DataBytes), 0.0
	for p.Passes = 1; ; p.Passes++ {
		total += pass / b
		next := math.Min(bound, r*pass/b)
		if next <= thr {
			p.Converges = true
			total += next / b // the switch-over sends the rest
			break
		}
		if p.Passes >= maxPredictedPasses || next >= pass {
			break
		}
		pass = next
	}
	switch {
	case p.Converges && r <= convergeRatio*b:
		p.Choice = ChoicePrecopy
	case p.Converges:
		p.Choice = ChoiceAutoConverge
	default:
		p.Choice = ChoicePostCopy
		// first pass, the stall auto switches on, then the pages dirtied
		// during the first pass are pulled
		total = first + postCopySwitchDelay.Seconds() + math.Min(bound, r*first)/b
	}
	p.TotalMs = int64(total * 1000)
	return p
}

// AutoMaxDowntime is the largest downtime auto allows before its last
// resort (its last downtime step): the switch-over Predict must reach.
func AutoMaxDowntime() time.Duration {
	p, _ := PolicyByName(PolicyAuto)
	if k := len(p.DowntimeSteps); k > 0 {
		return p.DowntimeSteps[k-1]
	}
	return p.InitialDowntime
}

// History is what the VM's last successful migration measured
// (fsm.Progress.FirstPassBytes, DirtySetBytes and FirstByteMs); zero
// fields: unknown.
type History struct {
	FirstPassBytes uint64
	DirtySetBytes  uint64
	Setup          time.Duration
}

// Where a prediction's memory to send comes from (fsm.Prediction.DataFrom).
const (
	DataFromHistory    = "last migration"
	DataFromHypervisor = "hypervisor"
	DataFromMemory     = "memory"
)

// PredictAuto is the prediction made before a migration of a guest of
// memBytes, sampled as r (sampled false: not sampled), with the VM's
// history h, at bwBps (0: unlimited): what the source of an auto migration
// acts on, and what `meshctl migrate --dry-run` shows, so both say the
// same. The memory to send is the smaller of what the last migration's
// first pass sent and what the hypervisor holds for the guest: the
// hypervisor's figure is an upper bound (libvirt's is QEMU's resident
// set, which holds zero pages the guest touched and QEMU's own memory:
// 128 MiB for a lab guest whose first pass sent ~45 MiB), the history is
// what QEMU actually sent. The later passes and the post-copy pull are
// bounded by the dirty set the last migration found when its second pass
// began. The last migration's setup (its first byte's time) is added: the
// job's elapsed time, which the prediction is judged against, counts it.
func PredictAuto(memBytes uint64, r DirtyRate, h History, bwBps uint64, sampled bool) fsm.Prediction {
	data, from := r.InUseBytes, DataFromHypervisor
	if h.FirstPassBytes > 0 && (data == 0 || h.FirstPassBytes < data) {
		data, from = h.FirstPassBytes, DataFromHistory
	}
	if data == 0 || data >= memBytes {
		data, from = memBytes, DataFromMemory
	}
	p := predict(memBytes, data, h.DirtySetBytes, r.Bps, bwBps, AutoMaxDowntime(), sampled)
	p.DataFrom = from
	if p.TotalMs > 0 && h.Setup > 0 {
		p.SetupMs = h.Setup.Milliseconds()
		p.TotalMs += p.SetupMs
	}
	return p
}

// AutoPolicy is the policy auto runs for a prediction. Every choice keeps
// post-copy as its last resort (the job starts with it allowed), so a wrong
// prediction costs time, never the migration:
//
//   - pre-copy: minimal-downtime's steps without throttling the guest;
//   - auto-converge: minimal-downtime (throttling, steps);
//   - post-copy: switch at the first stall, after the first pass.
func AutoPolicy(pred fsm.Prediction) Policy {
	md, _ := PolicyByName(PolicyMinimalDowntime)
	p := Policy{
		Name:            PolicyAuto,
		InitialDowntime: md.InitialDowntime,
		DowntimeSteps:   md.DowntimeSteps,
		AllowPostCopy:   true,
	}
	switch pred.Choice {
	case ChoicePrecopy:
		p.PostCopyAfterStalls = len(p.DowntimeSteps) + 1
	case ChoicePostCopy:
		p.AutoConverge = true
		p.PostCopyAfterStalls = 1
	default:
		p.AutoConverge = true
		p.PostCopyAfterStalls = len(p.DowntimeSteps) + 1
	}
	p.Description = fmt.Sprintf("auto: %s (predicted %s, dirty %.1f MiB/s at %.1f MiB/s)", pred.Choice,
		time.Duration(pred.TotalMs)*time.Millisecond, float64(pred.DirtyRateBps)/(1<<20), float64(pred.BandwidthBps)/(1<<20))
	return p
}
