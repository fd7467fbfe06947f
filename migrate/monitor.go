package migrate

import (
	"context"
	"errors"
	"fmt"
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
)

// Defaults of MonitorConfig, from vdsm (64 s per GiB, 240 s without progress).
const (
	DefaultMonitorInterval  = 500 * time.Millisecond
	DefaultProgressTimeout  = 240 * time.Second
	DefaultCompletionPerGiB = 64 * time.Second
	DefaultStallSamples     = 4
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
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// NewTicker returns a channel that ticks every d and a stop function.
	// Default wraps time.NewTicker; sim.Clock.NewTicker fits.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
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
// Watch only follows it. Cancelling ctx aborts the job and returns the ctx
// error. After success it returns job.Result(); after failure the last stats
// known and an error naming the VM.
func Watch(ctx context.Context, job Job, pol Policy, cfg MonitorConfig, report func(fsm.Progress)) (JobStats, error) {
	cfg = cfg.withDefaults()
	w := &watcher{job: job, pol: pol, cfg: cfg, report: report,
		start: cfg.Clock(), maxDowntime: pol.InitialDowntime}
	w.lastProgress = w.start
	w.limit = w.completionLimit(JobStats{})
	tick, stop := cfg.NewTicker(cfg.Interval)
	defer stop()
	for {
		select {
		case <-job.Done():
			return w.ended()
		case <-ctx.Done():
			return w.cancelled(ctx.Err())
		case <-tick:
			st, err := job.Stats()
			if err != nil {
				// the job may be ending (Done decides) or the hypervisor
				// unreachable: the timeouts still run on what is known
				if w.postCopy {
					continue // cannot be aborted any more
				}
				if cause := w.timeouts(cfg.Clock(), w.last); cause != nil {
					return w.abort(fmt.Errorf("%w (sampling: %v)", cause, err))
				}
				continue
			}
			if cause := w.sample(cfg.Clock(), st); cause != nil {
				return w.abort(cause)
			}
		}
	}
}

// watcher is the state of one Watch.
type watcher struct {
	job    Job
	pol    Policy
	cfg    MonitorConfig
	report func(fsm.Progress)

	start        time.Time
	last         JobStats
	sampled      bool
	low          uint64 // low-water mark of DataRemaining
	lastProgress time.Time
	windowN      int // samples in the current stall window
	windowIter   int // MemIteration when the window started
	stalls       int
	finalSet     bool
	postCopy     bool
	postCopyAt   time.Duration // job elapsed time of the switch to post-copy
	maxDowntime  time.Duration
	percent      float64
	limit        time.Duration // completion limit (MemBytes, else the first sample's size)
	actions      []string
}

// sample takes one sample; a non-nil result is why the job must be aborted.
func (w *watcher) sample(now time.Time, st JobStats) error {
	if !w.sampled {
		w.sampled = true
		w.low = st.DataRemaining
		w.lastProgress = now
		w.windowIter = st.MemIteration
		w.limit = w.completionLimit(st)
	} else if st.DataRemaining < w.low {
		w.low = st.DataRemaining
		w.lastProgress = now
		w.windowN, w.windowIter = 0, st.MemIteration
	} else {
		w.windowN++
	}
	w.last = st
	if st.PostCopy {
		w.postCopy = true
	}
	var cause error
	if !w.postCopy {
		cause = w.check(now, st)
	}
	w.emit(st, false)
	return cause
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

// act takes the policy's action for stall number w.stalls.
func (w *watcher) act() error {
	k, p := w.stalls, w.pol
	switch {
	case p.PostCopyAfterStalls > 0 && k >= p.PostCopyAfterStalls:
		if err := w.job.StartPostCopy(); err != nil {
			w.actions = append(w.actions, "abort: post-copy refused")
			return fmt.Errorf("migrate vm %q: stall %d: start post-copy: %v: %w", w.cfg.VM, k, err, ErrNotConverging)
		}
		w.postCopy = true
		w.postCopyAt = w.last.Elapsed
		w.actions = append(w.actions, "post-copy")
	case k <= len(p.DowntimeSteps):
		return w.setDowntime(p.DowntimeSteps[k-1], "downtime")
	case p.FinalDowntime > 0 && !w.finalSet:
		w.finalSet = true
		return w.setDowntime(p.FinalDowntime, "final downtime")
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
		Percent:         w.percent,
		ElapsedMs:       st.Elapsed.Milliseconds(),
		TotalBytes:      st.DataTotal,
		ProcessedBytes:  st.DataProcessed,
		RemainingBytes:  st.DataRemaining,
		MiBps:           float64(st.MemBps) / (1 << 20),
		DirtyRateBps:    st.MemDirtyRate,
		Iteration:       st.MemIteration,
		PostCopy:        st.PostCopy || w.postCopy,
		MaxDowntimeMs:   md.Milliseconds(),
		ThrottlePercent: st.AutoConvergeThrottle,
		PostCopyAtMs:    w.postCopyAt.Milliseconds(),
		Actions:         append([]string(nil), w.actions...),
	})
}

// ended returns how the job ended on its own.
func (w *watcher) ended() (JobStats, error) {
	if err := w.job.Err(); err != nil {
		st := w.job.Result()
		if st == (JobStats{}) {
			st = w.last
		}
		return st, fmt.Errorf("migrate vm %q: %w", w.cfg.VM, err)
	}
	res := w.job.Result()
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
