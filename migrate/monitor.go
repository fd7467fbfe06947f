package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// Sentinel errors of Watch, so callers can tell a migration that could not
// converge (retry elsewhere, or later) from one the hypervisor failed.
var (
	// ErrProgressTimeout: remaining data did not reach a new low for
	// MonitorConfig.ProgressTimeout.
	ErrProgressTimeout = errors.New("migration made no progress")
	// ErrCompletionTimeout: the migration ran longer than
	// MonitorConfig.CompletionPerGiB allows for its size.
	ErrCompletionTimeout = errors.New("migration did not complete in time")
	// ErrNotConverging: the policy ran out of actions while the migration kept
	// stalling (minimal-downtime after its last downtime step).
	ErrNotConverging = errors.New("migration not converging")
	// ErrPostCopyBroken: the job broke after the switch to post-copy (its
	// stream failed, or stalled for PostCopyStallTimeout and Watch broke it
	// off). The guest's memory is split between the two hosts: the
	// migration must resume (Hypervisor.ResumePostCopy), never be retried
	// elsewhere.
	ErrPostCopyBroken = errors.New("post-copy migration broke")
	// ErrDetached: MonitorConfig.Detach closed; Watch stopped watching and
	// left the job running on the hypervisor.
	ErrDetached = errors.New("stopped watching; the job runs on")
)

// Defaults of MonitorConfig, from vdsm (64 s per GiB, 240 s without progress).
const (
	DefaultMonitorInterval  = 500 * time.Millisecond
	DefaultProgressTimeout  = 240 * time.Second
	DefaultCompletionPerGiB = 64 * time.Second
	DefaultStallSamples     = 4
	// DefaultPostCopyStallTimeout: a job asked to switch to post-copy
	// whose stream stalls before its samples show the switch is aborted
	// (or broken off) after this long.
	DefaultPostCopyStallTimeout = 10 * time.Second
	// DefaultPostCopyStreamTimeout: a post-copy whose remaining data has
	// not fallen for this long is broken off so that it can resume on a
	// new stream. A cut link (a cable pulled, an interface down) keeps the
	// TCP stream open: it carries on by itself when the link comes back,
	// and Linux gives it up after tcp_retries2 (15: about 15 min), which
	// breaks the post-copy without us. Breaking it off sooner does not
	// bring a page sooner and makes the resume depend on QEMU's
	// migrate-recover, which libvirt 9.0 sends in-band: on QEMU 7.2 a
	// destination whose vCPU waits for a page while holding QEMU's big
	// lock never runs it (issue 10, see README "Post-copy link cut").
	DefaultPostCopyStreamTimeout = 20 * time.Minute
	// DefaultSuspendedTimeout: a suspended guest's remaining data must
	// reach a new low within this: nothing dirties it any more, so a copy
	// that does not fall is broken, and the guest is resumed on its source
	// rather than left standing for the whole progress timeout.
	DefaultSuspendedTimeout = 30 * time.Second
)

// MonitorConfig tunes Watch. Zero fields take the defaults. Clock and
// NewTicker are injected so tests (and the simulated hypervisor, whose jobs
// run in simulated time) control time.
type MonitorConfig struct {
	// VM names the guest in errors.
	VM string
	// Interval is the sample period. Default 500ms.
	Interval time.Duration
	// ProgressTimeout aborts a migration whose remaining data reached no new
	// low for this long. Default 240s.
	ProgressTimeout time.Duration
	// CompletionPerGiB aborts a migration running longer than this per GiB of
	// data (memory and copied disks). Sizes under 1 GiB count as 1 GiB, so
	// small guests get at least CompletionPerGiB. Default 64s.
	CompletionPerGiB time.Duration
	// StallSamples is the shortest stall window in samples. Default 4.
	StallSamples int
	// MemBytes is the size the completion limit is computed from; 0 takes the
	// first sample's DataTotal.
	MemBytes uint64
	// PostCopyStallTimeout breaks off (Job.InterruptPostCopy), or aborts,
	// a job asked to switch to post-copy whose samples do not show the
	// switch yet and that made no progress for this long. Default 10s.
	PostCopyStallTimeout time.Duration
	// PostCopyStreamTimeout breaks off a post-copy (its samples show the
	// switch) that made no progress for this long. Default 20min (see
	// DefaultPostCopyStreamTimeout).
	PostCopyStreamTimeout time.Duration
	// SuspendedTimeout aborts a migration whose guest the policy paused
	// (Policy.SuspendWhenExhausted) when its remaining data reached no new
	// low for this long. Default 30s.
	SuspendedTimeout time.Duration
	// Prediction, when set, is carried in every report (the auto
	// policy's prediction, kept next to the outcome). A re-attached
	// watch carries Prior's.
	Prediction *fsm.Prediction
	// Prior is the last progress reported for this job by an earlier watch
	// (a meshd that re-attaches after a restart, or a resumed post-copy):
	// the policy goes on from the actions it records, the completion limit
	// counts the job's own elapsed time, and the percentage never goes back.
	Prior *fsm.Progress
	// Detach, when closed, makes Watch return ErrDetached at once without
	// touching the job: a meshd that stops leaves its jobs to the
	// hypervisor, and the next one re-attaches.
	Detach <-chan struct{}
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// NewTicker returns a channel that ticks every d and a stop function.
	// Default wraps time.NewTicker; sim.Clock.NewTicker fits.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
	// EndProbe, when set, samples the job this often once a sample
	// predicts its transfer to end before the next one (its remaining data
	// at its rate within Interval), and reports at once the first such
	// sample that finds nothing left to send; other probes are not
	// reported and the policy never sees them. An auto-bandwidth cluster
	// hands an ending transfer's cap to the next one when that report
	// commits (fsm.State.Sent): with samples every 500 ms alone the link
	// ran at the next one's setup share for up to half a second per wave
	// of a drain. 0: off.
	EndProbe time.Duration
	// LastFirstPass is what the VM's last migration's first pass sent
	// (0: unknown), carried in every report (fsm.TransferLeftMs).
	LastFirstPass uint64
}

func (c MonitorConfig) withDefaults() MonitorConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultMonitorInterval
	}
	if c.ProgressTimeout <= 0 {
		c.ProgressTimeout = DefaultProgressTimeout
	}
	if c.CompletionPerGiB <= 0 {
		c.CompletionPerGiB = DefaultCompletionPerGiB
	}
	if c.StallSamples <= 0 {
		c.StallSamples = DefaultStallSamples
	}
	if c.PostCopyStallTimeout <= 0 {
		c.PostCopyStallTimeout = DefaultPostCopyStallTimeout
	}
	if c.PostCopyStreamTimeout <= 0 {
		c.PostCopyStreamTimeout = DefaultPostCopyStreamTimeout
	}
	if c.SuspendedTimeout <= 0 {
		c.SuspendedTimeout = DefaultSuspendedTimeout
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.NewTicker == nil {
		c.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if c.VM == "" {
		c.VM = "(unnamed)"
	}
	return c
}

// Watch follows a running migration job until it ends, applying the policy,
// as KubeVirt's migration monitor and vdsm's convergence schedule do.
//
// Every Interval it samples job.Stats and reports an fsm.Progress (report may
// be nil). It keeps a low-water mark of DataRemaining: a sample below the mark
// is progress. A stall is a window without progress: it starts at the last
// progress (or the last stall) and counts as a stall once it spans at least
// StallSamples samples AND the hypervisor began a new memory pass (MemIteration
// grew) — the pass condition keeps the policy from acting faster than the
// hypervisor (and auto-converge, which throttles per pass) can respond. Each
// stall starts a new window and triggers the policy's next action (see
// Policy).
//
// Independently of the policy: no progress for ProgressTimeout aborts with
// ErrProgressTimeout; running longer than CompletionPerGiB × GiB aborts with
// ErrCompletionTimeout. Once in post-copy the job can no longer be aborted, so
// Watch only follows it, unless it stalls for PostCopyStreamTimeout: then it
// breaks the job off (ErrPostCopyBroken) so that it can resume. Cancelling
// ctx aborts the job and returns the ctx error; closing cfg.Detach returns
// ErrDetached and leaves the job alone. After success it returns
// job.Result(); after failure the last stats known and an error naming the
// VM, wrapping ErrPostCopyBroken when the failure came after the switch to
// post-copy.
func Watch(ctx context.Context, job Job, pol Policy, cfg MonitorConfig, report func(fsm.Progress)) (JobStats, error) {
	cfg = cfg.withDefaults()
	w := &watcher{job: job, pol: pol, cfg: cfg, report: report,
		start: cfg.Clock(), maxDowntime: pol.InitialDowntime}
	w.lastProgress = w.start
	w.limit = w.completionLimit(JobStats{})
	w.resume(cfg.Prior)
	tick, stop := cfg.NewTicker(cfg.Interval)
	defer stop()
	var probe <-chan time.Time // EndProbe's ticks while the transfer ends
	stopProbe := func() {}
	defer func() { stopProbe() }()
	for {
		select {
		case <-job.Done():
			return w.ended()
		case <-probe:
			if st, err := job.Stats(); err == nil && w.allSent(st) {
				stopProbe()
				probe, stopProbe = nil, func() {}
				if cause := w.sample(cfg.Clock(), st); cause != nil {
					return w.abort(cause)
				}
			}
		case <-cfg.Detach:
			return w.last, fmt.Errorf("migrate vm %q: %w", cfg.VM, ErrDetached)
		case <-ctx.Done():
			return w.cancelled(ctx.Err())
		case <-tick:
			st, err := job.Stats()
			if err != nil {
				// the job may be ending (Done decides) or the hypervisor
				// unreachable: the timeouts still run on what is known
				if w.postCopy {
					if cause := w.postCopyStalled(cfg.Clock()); cause != nil {
						return w.breakPostCopy(cause)
					}
					continue // cannot be aborted any more
				}
				if cause := w.timeouts(cfg.Clock(), w.last); cause != nil {
					return w.abort(fmt.Errorf("%w (sampling: %v)", cause, err))
				}
				continue
			}
			now := cfg.Clock()
			if cause := w.sample(now, st); cause != nil {
				return w.abort(cause)
			}
			switch ending := w.ending(st); {
			case ending && probe == nil:
				probe, stopProbe = cfg.NewTicker(cfg.EndProbe)
			case !ending && probe != nil:
				stopProbe()
				probe, stopProbe = nil, func() {}
			}
			if cause := w.postCopyStalled(now); cause != nil {
				return w.breakPostCopy(cause)
			}
		}
	}
}

// resume takes over the policy's state from an earlier watch's last
// report: the actions taken (one per stall that had an action), the
// allowed downtime, the switch to post-copy and the percentage. The
// completion limit counts the job's elapsed time, set at the first sample.
func (w *watcher) resume(p *fsm.Progress) {
	if p == nil {
		return
	}
	w.resumed = true
	w.actions = append([]string(nil), p.Actions...)
	for _, a := range p.Actions {
		if a == actionPostCopy || a == "final downtime" || strings.HasPrefix(a, "downtime ") || strings.HasPrefix(a, "final downtime ") {
			w.stalls++
		}
		if strings.HasPrefix(a, "final downtime") {
			w.finalSet = true
		}
		if a == actionSuspend || a == actionSuspendLimit {
			// the pause is counted from the job's elapsed time then
			if a == actionSuspend {
				w.stalls++
			}
			w.suspended = true
			w.suspendElapsed = time.Duration(p.SuspendedAtMs) * time.Millisecond
		}
	}
	if p.MaxDowntimeMs > 0 {
		w.maxDowntime = time.Duration(p.MaxDowntimeMs) * time.Millisecond
	}
	w.postCopy = p.PostCopy
	w.postCopyAt = time.Duration(p.PostCopyAtMs) * time.Millisecond
	w.percent = p.Percent
	if w.cfg.Prediction == nil {
		w.cfg.Prediction = p.Prediction
	}
	w.priorElapsed = time.Duration(p.ElapsedMs) * time.Millisecond
	w.firstByte = time.Duration(p.FirstByteMs) * time.Millisecond
	w.firstPass = p.FirstPassBytes
	w.dirtySet = p.DirtySetBytes
}

// postCopyStalled says why a post-copy must be broken off: its remaining
// data reached no new low for PostCopyStreamTimeout (PostCopyStallTimeout
// while its samples do not show the switch yet).
func (w *watcher) postCopyStalled(now time.Time) error {
	if !w.postCopy {
		return nil
	}
	limit, what := w.cfg.PostCopyStreamTimeout, "post-copy stream timeout"
	if !w.last.PostCopy {
		limit, what = w.cfg.PostCopyStallTimeout, "post-copy stall timeout"
	}
	if idle := now.Sub(w.lastProgress); idle >= limit {
		return fmt.Errorf("migrate vm %q: post-copy remaining %d MiB has not fallen for %v (%s %v): %w",
			w.cfg.VM, w.low>>20, idle.Round(time.Millisecond), what, limit, ErrPostCopyBroken)
	}
	return nil
}

// breakPostCopy breaks off a stalled post-copy so that it can resume. It
// does not wait for the job's end: libvirt's call returns only once the
// destination notices the broken stream, which a cut link delays for as
// long as it stays cut.
//
// A job asked to switch that never did (the stream stalled before the
// switch-over) is still a pre-copy with the guest on the source: it is
// aborted like any stalled pre-copy.
func (w *watcher) breakPostCopy(cause error) (JobStats, error) {
	err := w.job.InterruptPostCopy()
	if err == nil {
		w.actions = append(w.actions, "post-copy interrupted")
		w.emit(w.last, false)
		return w.last, cause
	}
	select {
	case <-w.job.Done(): // it ended meanwhile: report how
		return w.ended()
	default:
	}
	if aerr := w.job.Abort(); aerr == nil {
		w.actions = append(w.actions, "abort: stalled before the switch to post-copy")
		<-w.job.Done()
		if w.job.Err() == nil {
			return w.ended()
		}
		return w.last, fmt.Errorf("migrate vm %q: stalled for %v before the switch to post-copy it asked for (interrupt: %v): %w",
			w.cfg.VM, w.cfg.PostCopyStallTimeout, err, ErrProgressTimeout)
	}
	w.actions = append(w.actions, "post-copy interrupted")
	return w.last, fmt.Errorf("%w (interrupt: %v)", cause, err)
}

// watcher is the state of one Watch.
type watcher struct {
	job    Job
	pol    Policy
	cfg    MonitorConfig
	report func(fsm.Progress)

	start          time.Time
	last           JobStats
	sampled        bool
	low            uint64 // low-water mark of DataRemaining
	lastProgress   time.Time
	windowN        int // samples in the current stall window
	windowIter     int // MemIteration when the window started
	stalls         int
	finalSet       bool
	suspended      bool          // the policy paused the guest (Job.Suspend)
	suspendAt      time.Time     // when, on this watch's clock (zero if re-attached)
	suspendElapsed time.Duration // the job's elapsed time then
	pcWatched      bool          // the post-copy stall clock runs (from the switch)
	resumed        bool          // a re-attached watch: start follows the job's elapsed time
	priorElapsed   time.Duration // the job's elapsed time in the earlier watch's last report
	postCopy       bool
	postCopyAt     time.Duration // job elapsed time of the switch to post-copy
	firstByte      time.Duration // job elapsed time of the first bytes moved
	firstPass      uint64        // bytes the first memory pass sent
	dirtySet       uint64        // remaining data when the second pass began
	pass           passFall      // how fast the current pass's remaining data falls
	maxDowntime    time.Duration
	percent        float64
	limit          time.Duration // completion limit (MemBytes, else the first sample's size)
	actions        []string
}

// sample takes one sample; a non-nil result is why the job must be aborted.
func (w *watcher) sample(now time.Time, st JobStats) error {
	w.learn(st)
	if !w.sampled && st.DataTotal == 0 {
		// libvirt's job reports zeros until its first pass begins: a
		// low-water mark of 0 would make every later sample a non-progress
		// and every pass a stall (the lab showed steps taken in pass 1)
		w.last = st
		w.emit(st, false)
		return nil
	}
	if !w.sampled {
		w.sampled = true
		w.low = st.DataRemaining
		w.lastProgress = now
		w.windowIter = st.MemIteration
		w.limit = w.completionLimit(st)
		if w.resumed {
			// the time the job already ran counts against its limit
			w.start = now.Add(-max(st.Elapsed, w.priorElapsed))
		}
	} else if st.DataRemaining < w.low {
		w.low = st.DataRemaining
		w.lastProgress = now
		w.windowN, w.windowIter = 0, st.MemIteration
	} else {
		w.windowN++
	}
	w.last = st
	w.pass.sample(st)
	if st.PostCopy && !w.postCopy && w.resumed && !slices.Contains(w.actions, actionPostCopy) {
		// Re-attached to a job already in post-copy whose switch no
		// report carried: the earlier meshd died between the switch and
		// its next committed sample (23 ms apart in the lab). Only the
		// policy switches (or an operator by hand), so the switch is
		// recorded as the policy's action; without it the record said
		// post-copy with no action that led there. Its time is unknown.
		w.actions = append(w.actions, actionPostCopy)
	}
	if st.PostCopy {
		w.postCopy = true
	}
	var cause error
	if !w.postCopy {
		cause = w.check(now, st)
	}
	if w.postCopy && !w.pcWatched {
		// the post-copy stall clock starts at the switch, from what
		// post-copy still has to pull
		w.pcWatched = true
		w.low, w.lastProgress = st.DataRemaining, now
	}
	w.emit(st, false)
	return cause
}

// ending says whether EndProbe should watch the job until the next
// sample: it predicts the pre-copy transfer to be sent (allSent) before
// then, and no sample reported that yet.
func (w *watcher) ending(st JobStats) bool {
	if w.cfg.EndProbe <= 0 || w.postCopy || st.PostCopy || st.DataRemaining == 0 || st.MemBps == 0 || st.DataProcessed == 0 {
		return false
	}
	window := w.cfg.Interval + fsm.SentWindowMs*time.Millisecond
	left, ok := fsm.TransferLeftMs(fsm.Progress{ProcessedBytes: st.DataProcessed, RemainingBytes: st.DataRemaining, Iteration: st.MemIteration,
		MiBps: float64(st.MemBps) / (1 << 20), FallBps: w.pass.bps, LastFirstPassBytes: w.cfg.LastFirstPass})
	return ok && left < float64(window.Milliseconds())
}

// allSent says whether a probe found the pre-copy transfer sent by the
// rule the hand-off and the leader apply to the report (fsm.TransferSent):
// nothing left, or a later pass within about its allowed downtime of its
// end (the job completes: its last pause and the destination resuming,
// which QEMU runs without the rate limit).
func (w *watcher) allSent(st JobStats) bool {
	md := st.MaxDowntime
	if md == 0 {
		md = w.maxDowntime
	}
	return fsm.TransferSent(fsm.Progress{
		ProcessedBytes: st.DataProcessed,
		RemainingBytes: st.DataRemaining,
		MiBps:          float64(st.MemBps) / (1 << 20),
		Iteration:      st.MemIteration,
		PostCopy:       st.PostCopy || w.postCopy,
		MaxDowntimeMs:  md.Milliseconds(),
	})
}

// learn notes the job's setup (the elapsed time of its first bytes), its
// first pass's size (the bytes sent when the second pass began, half a
// sample interval's bytes either way: the midpoint of the samples around
// the pass's end) and the dirty set the second pass found (its remaining
// data then) for the next prediction of the VM.
func (w *watcher) learn(st JobStats) {
	if w.firstByte == 0 && st.DataProcessed > 0 {
		w.firstByte = max(st.Elapsed, time.Millisecond)
	}
	if w.firstPass == 0 && st.MemIteration >= 2 && st.DataProcessed > 0 {
		prev := w.last.DataProcessed
		if w.last.MemIteration != 1 || prev > st.DataProcessed {
			prev = st.DataProcessed
		}
		w.firstPass = (prev + st.DataProcessed) / 2
		w.dirtySet = max(st.DataRemaining, 1)
	}
}

// check applies the timeouts and, on a stall, the policy.
func (w *watcher) check(now time.Time, st JobStats) error {
	if err := w.timeouts(now, st); err != nil {
		return err
	}
	if w.windowN < w.cfg.StallSamples || st.MemIteration <= w.windowIter {
		return nil
	}
	w.stalls++
	w.windowN, w.windowIter = 0, st.MemIteration
	return w.act()
}

// timeouts aborts a migration without progress for ProgressTimeout or
// running longer than its completion limit, whatever the policy.
func (w *watcher) timeouts(now time.Time, st JobStats) error {
	if w.suspended {
		// the guest stands still: the copy must fall, however long it is
		if idle := now.Sub(w.lastProgress); idle >= w.cfg.SuspendedTimeout {
			w.actions = append(w.actions, "abort: no progress while suspended")
			return fmt.Errorf("migrate vm %q: guest suspended, but remaining %d MiB has not fallen below %d MiB for %v (suspended timeout %v): %w",
				w.cfg.VM, st.DataRemaining>>20, w.low>>20, idle.Round(time.Millisecond), w.cfg.SuspendedTimeout, ErrProgressTimeout)
		}
		return nil
	}
	if w.pol.SuspendWhenExhausted && (now.Sub(w.lastProgress) >= w.cfg.ProgressTimeout || now.Sub(w.start) >= w.limit) {
		// the policy promises the move: pause the guest now rather than
		// give up before its steps ran out (a large guest's passes are long)
		return w.suspend(actionSuspendLimit)
	}
	if idle := now.Sub(w.lastProgress); idle >= w.cfg.ProgressTimeout {
		w.actions = append(w.actions, "abort: no progress")
		return fmt.Errorf("migrate vm %q: remaining %d MiB has not fallen below %d MiB for %v (progress timeout %v): %w",
			w.cfg.VM, st.DataRemaining>>20, w.low>>20, idle.Round(time.Millisecond), w.cfg.ProgressTimeout, ErrProgressTimeout)
	}
	if ran := now.Sub(w.start); ran >= w.limit {
		w.actions = append(w.actions, "abort: completion timeout")
		return fmt.Errorf("migrate vm %q: running %v, over the %v allowed for %.2f GiB at %v per GiB: %w",
			w.cfg.VM, ran.Round(time.Millisecond), w.limit, float64(w.size(st))/(1<<30), w.cfg.CompletionPerGiB, ErrCompletionTimeout)
	}
	return nil
}

// fittedDowntime is the allowed downtime in which the remaining data crosses
// at the job's current rate, with room for what is dirtied meanwhile
// (× 1.5 + 0.5 s), at least 1 s and at most limit.
func (w *watcher) fittedDowntime(limit time.Duration) time.Duration {
	st := w.last
	if st.MemBps == 0 {
		return limit
	}
	secs := float64(st.DataRemaining)/float64(st.MemBps)*1.5 + 0.5
	d := time.Duration(secs * float64(time.Second)).Round(100 * time.Millisecond)
	return min(limit, max(time.Second, d))
}

// The progress actions of the switch to post-copy and of
// Policy.SuspendWhenExhausted (after the last step, or when the completion
// or progress limit came first).
const (
	actionPostCopy     = "post-copy"
	actionSuspend      = "suspend"
	actionSuspendLimit = "suspend: time limit"
)

// suspend pauses the guest (Policy.SuspendWhenExhausted) and records it
// under action; a refusal aborts the migration.
func (w *watcher) suspend(action string) error {
	if err := w.job.Suspend(); err != nil {
		w.actions = append(w.actions, "abort: suspend refused")
		return fmt.Errorf("migrate vm %q: suspend the guest after %d stalls: %v: %w", w.cfg.VM, w.stalls, err, ErrNotConverging)
	}
	w.suspended = true
	w.suspendAt, w.suspendElapsed = w.cfg.Clock(), w.last.Elapsed
	w.lastProgress = w.suspendAt // the suspended timeout runs from here
	w.actions = append(w.actions, action)
	return nil
}

// act takes the policy's action for stall number w.stalls.
func (w *watcher) act() error {
	k, p := w.stalls, w.pol
	if w.suspended {
		return nil // nothing dirties the guest any more: the steps are moot
	}
	switch {
	case p.PostCopyAfterStalls > 0 && k >= p.PostCopyAfterStalls:
		if err := w.job.StartPostCopy(); err != nil {
			w.actions = append(w.actions, "abort: post-copy refused")
			return fmt.Errorf("migrate vm %q: stall %d: start post-copy: %v: %w", w.cfg.VM, k, err, ErrNotConverging)
		}
		w.postCopy = true
		w.postCopyAt = w.last.Elapsed
		w.actions = append(w.actions, actionPostCopy)
	case k <= len(p.DowntimeSteps):
		return w.setDowntime(p.DowntimeSteps[k-1], "downtime")
	case p.FinalDowntime > 0 && !w.finalSet:
		w.finalSet = true
		d := p.FinalDowntime
		if p.FitFinalDowntime {
			d = w.fittedDowntime(p.FinalDowntime)
		}
		return w.setDowntime(d, "final downtime")
	case p.SuspendWhenExhausted && !w.suspended:
		return w.suspend(actionSuspend)
	case p.AbortOnExhausted:
		w.actions = append(w.actions, "abort: not converging")
		return fmt.Errorf("migrate vm %q: still stalling after %d stalls at %v allowed downtime (policy %s): %w",
			w.cfg.VM, k, w.maxDowntime, p.Name, ErrNotConverging)
	}
	return nil
}

func (w *watcher) setDowntime(d time.Duration, label string) error {
	if err := w.job.SetMaxDowntime(d); err != nil {
		// the job may have ended between the sample and now; Done decides
		w.actions = append(w.actions, fmt.Sprintf("%s %v failed", label, d))
		return nil
	}
	w.maxDowntime = d
	w.actions = append(w.actions, fmt.Sprintf("%s %v", label, d))
	return nil
}

// size is what the completion limit scales with.
func (w *watcher) size(st JobStats) uint64 {
	if w.cfg.MemBytes > 0 {
		return w.cfg.MemBytes
	}
	return st.DataTotal
}

// completionLimit is CompletionPerGiB × GiB, counting at least 1 GiB.
func (w *watcher) completionLimit(st JobStats) time.Duration {
	gib := float64(w.size(st)) / (1 << 30)
	if gib < 1 {
		gib = 1
	}
	return time.Duration(gib * float64(w.cfg.CompletionPerGiB))
}

// emit reports progress. Percent follows the low-water mark, so it never goes
// back when a new pass finds pages dirtied again, and holds at 99 until the
// job is done.
func (w *watcher) emit(st JobStats, done bool) {
	if w.report == nil {
		return
	}
	if st.DataTotal > 0 {
		p := 100 - 100*float64(w.low)/float64(st.DataTotal)
		w.percent = max(w.percent, min(99, max(0, p)))
	}
	if done {
		w.percent = 100
	}
	md := st.MaxDowntime
	if md == 0 {
		md = w.maxDowntime
	}
	w.report(fsm.Progress{
		Percent:            w.percent,
		ElapsedMs:          st.Elapsed.Milliseconds(),
		TotalBytes:         st.DataTotal,
		ProcessedBytes:     st.DataProcessed,
		RemainingBytes:     st.DataRemaining,
		MiBps:              float64(st.MemBps) / (1 << 20),
		DirtyRateBps:       st.MemDirtyRate,
		Iteration:          st.MemIteration,
		PostCopy:           st.PostCopy || w.postCopy,
		MaxDowntimeMs:      md.Milliseconds(),
		ThrottlePercent:    st.AutoConvergeThrottle,
		PostCopyAtMs:       w.postCopyAt.Milliseconds(),
		SuspendedAtMs:      w.suspendedAtMs(),
		FirstByteMs:        w.firstByte.Milliseconds(),
		FirstPassBytes:     w.firstPass,
		DirtySetBytes:      w.dirtySet,
		FallBps:            w.pass.bps,
		LastFirstPassBytes: w.cfg.LastFirstPass,
		Prediction:         w.cfg.Prediction,
		Actions:            append([]string(nil), w.actions...),
	})
}

// ended returns how the job ended on its own.
func (w *watcher) ended() (JobStats, error) {
	if err := w.job.Err(); err != nil {
		st := w.job.Result()
		if st == (JobStats{}) {
			st = w.last
		}
		if w.postCopy || st.PostCopy {
			return st, fmt.Errorf("migrate vm %q: %w: %w", w.cfg.VM, ErrPostCopyBroken, err)
		}
		return st, fmt.Errorf("migrate vm %q: %w", w.cfg.VM, err)
	}
	res := w.job.Result()
	if w.firstPass == 0 && !res.PostCopy && !w.postCopy {
		// completed within its first pass (and its switch-over): all it
		// sent, or (libvirt's completed stats may say 0) what its last
		// sample had sent and had left
		w.firstPass = res.DataProcessed
		if w.firstPass == 0 {
			w.firstPass = w.last.DataProcessed + w.last.DataRemaining
		}
	}
	if w.suspended {
		res.Downtime = max(res.Downtime, w.pause(res))
	}
	w.low = 0
	w.emit(res, true)
	return res, nil
}

// abort stops the job for cause. If it cannot be stopped (it switched over
// or entered post-copy meanwhile) Watch waits for its end, which may be a
// success after all.
func (w *watcher) abort(cause error) (JobStats, error) {
	if err := w.job.Abort(); err != nil {
		<-w.job.Done()
		if w.job.Err() == nil {
			return w.ended()
		}
		return w.last, fmt.Errorf("%w (abort: %v; job: %v)", cause, err, w.job.Err())
	}
	<-w.job.Done()
	return w.last, cause
}

// cancelled aborts the job because the caller gave up. It does not wait
// for a job that refuses to abort (post-copy): the caller is leaving.
func (w *watcher) cancelled(ctxErr error) (JobStats, error) {
	select {
	case <-w.job.Done():
		return w.ended() // it ended anyway: report how, not the cancel
	default:
	}
	w.actions = append(w.actions, "abort: cancelled")
	if err := w.job.Abort(); err != nil {
		return w.last, fmt.Errorf("migrate vm %q: %w (abort: %v)", w.cfg.VM, ctxErr, err)
	}
	<-w.job.Done()
	if w.job.Err() == nil { // it completed before the abort landed
		return w.ended()
	}
	return w.last, fmt.Errorf("migrate vm %q: %w", w.cfg.VM, ctxErr)
}

// suspendedAtMs is the job's elapsed time when the policy paused the guest
// (0: not paused), reported so that a re-attached watch counts the pause.
func (w *watcher) suspendedAtMs() int64 {
	if !w.suspended {
		return 0
	}
	return max(1, w.suspendElapsed.Milliseconds())
}

// pause is how long the suspended guest stood still: from the suspend to
// when the job resumed it on the destination (libvirt carries the paused
// state over), else to the job's end, when the destination runs it (the
// job's own elapsed time, or this watch's clock when the result lacks it). The hypervisor's
// downtime counts only the final switch-over, so without this a suspended
// migration would report the short switch-over and hide the pause.
func (w *watcher) pause(res JobStats) time.Duration {
	if !res.Resumed.IsZero() && !w.suspendAt.IsZero() {
		return res.Resumed.Sub(w.suspendAt)
	}
	if w.suspendElapsed > 0 && res.Elapsed > w.suspendElapsed {
		return res.Elapsed - w.suspendElapsed
	}
	if !w.suspendAt.IsZero() {
		return w.cfg.Clock().Sub(w.suspendAt)
	}
	return 0
}
