package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

const mib = 1 << 20

// phase is where a job is in its life.
type phase int

const (
	phaseDisk      phase = iota // copying local disks (NBD mirror) before memory
	phasePrecopy                // memory passes
	phaseSwitching              // guest paused, destination taking over
	phasePostcopy               // guest runs on the destination, pages pulled
	phaseDone
	// phaseBroken: the post-copy stream broke; the job's result is in, but
	// the VM waits on both hosts for ResumePostCopy, which continues the
	// remainder in a new job.
	phaseBroken
)

// job is one migration from a sim host. Its state changes only inside step
// (from the clock) and the Job methods, under mu; all quantities are bytes and
// simulated seconds.
type job struct {
	host     *Host
	dest     peer
	id       string
	vmName   string
	clock    *Clock
	period   time.Duration
	overhead time.Duration

	done     chan struct{}
	stopTick func()

	mu            sync.Mutex
	phase         phase
	err           error
	start, last   time.Time
	bw            float64
	maxDowntime   time.Duration
	autoConverge  bool
	allowPostCopy bool
	wantPostCopy  bool
	postCopy      bool
	suspended     bool // Suspend: the guest dirties nothing until the job ends

	memTotal, memSent   float64
	workingSet          float64 // the most the guest can have dirty at once
	diskTotal, diskSent float64
	passLeft            float64 // bytes of this pass not yet sent
	dirtied             float64 // bytes dirtied since this pass began
	passSent            float64 // bytes sent in this pass (auto-converge compares)
	dirtyRate           float64 // effective (throttled) rate of the last step
	iteration           int
	throttle            int
	highCount           int

	downtime   time.Duration
	switchedAt time.Duration // elapsed at switch-over
	endedAt    time.Duration // elapsed when post-copy finished
	fail       *failure
	final      migrate.JobStats
}

var _ migrate.Job = (*job)(nil)

func newJob(h *Host, dest peer, id string, spec VMSpec, p migrate.Params) *job {
	cfg := h.reg.cfg
	bw := float64(p.BandwidthMiB) * mib
	if bw <= 0 {
		bw = cfg.LinkMiBps * mib
	}
	mem := float64(spec.MemoryMiB) * mib
	j := &job{
		host: h, dest: dest, id: id, vmName: spec.Name,
		clock: h.reg.clock, period: cfg.Step, overhead: cfg.DowntimeOverhead,
		done:          make(chan struct{}),
		bw:            bw,
		maxDowntime:   p.MaxDowntime,
		autoConverge:  p.AutoConverge,
		allowPostCopy: p.AllowPostCopy,
		memTotal:      mem,
		workingSet:    mem,
		passLeft:      mem,
		diskTotal:     diskBytes(spec.Disks, p.CopyStorage),
		iteration:     1,
	}
	if j.maxDowntime <= 0 {
		j.maxDowntime = 300 * time.Millisecond // QEMU's default downtime limit
	}
	if ws := float64(spec.WorkingSetMiB) * mib; ws > 0 && ws < mem {
		j.workingSet = ws
	}
	if j.diskTotal == 0 {
		j.phase = phasePrecopy
	}
	return j
}

// begin starts stepping the job on the clock.
func (j *job) begin() {
	j.mu.Lock()
	j.start = j.clock.Now()
	j.last = j.start
	j.mu.Unlock()
	j.stopTick = j.clock.every(j.period, j.step)
}

// step advances the job to now. While either end's migration link is
// down nothing moves (the job's time still runs, as a stalled TCP stream's
// does).
func (j *job) step(now time.Time) {
	rate := j.host.dirtyRate(j.vmName)
	stalled := j.host.LinkDown() || j.dest.linkDown()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase == phaseSwitching || j.phase >= phaseDone {
		return
	}
	if setupEnd := j.start.Add(j.host.reg.cfg.Setup); now.Before(setupEnd) {
		j.last = now // the destination is still starting: nothing moves
		return
	} else if j.last.Before(setupEnd) {
		j.last = setupEnd
	}
	dt := now.Sub(j.last).Seconds()
	j.last = now
	if j.suspended {
		rate = 0
	}
	if stalled {
		return
	}
	j.advance(dt, rate)
}

// advance runs dt seconds of transfer at dirty rate rate. It moves from event
// to event (end of a pass, the moment the remainder fits the allowed downtime,
// an injected failure) so the result does not depend on the step size.
func (j *job) advance(dt, rate float64) {
	const eps = 1.0 // bytes
	// at is the simulated time of an event inside this step: the step ends
	// at j.last and dt seconds of it are still unused.
	at := func() time.Duration { return j.last.Sub(j.start) - time.Duration(dt*float64(time.Second)) }
	for guard := 0; dt > 0 && guard < 10000; guard++ {
		if j.fail != nil && j.memSent >= j.fail.frac*j.memTotal-eps {
			j.failLocked(j.fail.err)
			return
		}
		switch j.phase {
		case phaseDisk:
			t := math.Min(dt, (j.diskTotal-j.diskSent)/j.bw)
			j.diskSent += j.bw * t
			dt -= t
			if j.diskSent >= j.diskTotal-eps {
				j.diskSent = j.diskTotal
				j.phase = phasePrecopy
			}
		case phasePrecopy:
			if j.wantPostCopy {
				j.switchOverLocked(true, at())
				return
			}
			d := rate * (1 - float64(j.throttle)/100)
			j.dirtyRate = d
			thr := j.bw * j.maxDowntime.Seconds()
			if j.memRemaining() <= thr+eps {
				j.switchOverLocked(false, at())
				return
			}
			t := math.Min(dt, j.passLeft/j.bw)
			grow := d // how fast the dirty set grows until it fills the working set
			if j.dirtied >= j.workingSet-eps {
				grow = 0
			} else if d > 0 {
				t = math.Min(t, (j.workingSet-j.dirtied)/d)
			}
			// remaining is the least of two bounds (see memRemaining); it
			// fits thr as soon as either does
			if grow < j.bw { // pass + dirty set falls at bw-grow
				t = math.Min(t, (j.passLeft+j.dirtied-thr)/(j.bw-grow))
			}
			if j.workingSet <= thr { // the pass shrinks under the working set
				t = math.Min(t, math.Max(0, (j.passLeft-thr)/j.bw))
			}
			if j.fail != nil {
				t = math.Min(t, math.Max(0, (j.fail.frac*j.memTotal-j.memSent)/j.bw))
			}
			sent := j.bw * t
			j.passLeft -= sent
			j.memSent += sent
			j.passSent += sent
			j.dirtied = math.Min(j.workingSet, j.dirtied+grow*t)
			dt -= t
			if j.passLeft <= eps {
				j.endPassLocked()
			}
		case phasePostcopy:
			t := math.Min(dt, j.passLeft/j.bw)
			j.passLeft -= j.bw * t
			j.memSent += j.bw * t
			dt -= t
			if j.passLeft <= eps {
				j.passLeft = 0
				j.endedAt = at()
				j.completeLocked()
				return
			}
		default:
			return
		}
	}
}

// memRemaining is what still has to cross: the rest of this pass plus what
// was dirtied since it began (QEMU's exact pending size). Dirty pages lie in
// the working set, so once the pass is within it they are pages the pass
// still holds: the sum is bounded by the larger of the pass and the working
// set, and by all memory.
func (j *job) memRemaining() float64 {
	return math.Min(j.memTotal, math.Min(j.passLeft+j.dirtied, math.Max(j.passLeft, j.workingSet)))
}

// endPassLocked starts the next pass with what the guest dirtied, and lets
// auto-converge throttle as QEMU does: when the guest dirtied more than half
// of what was sent in two passes, throttle 20%, then 10% more each time.
func (j *job) endPassLocked() {
	j.iteration++
	if j.autoConverge && j.passSent > 0 && j.dirtied > j.passSent/2 {
		j.highCount++
		if j.highCount >= 2 {
			j.highCount = 0
			if j.throttle == 0 {
				j.throttle = 20
			} else {
				j.throttle = min(j.throttle+10, 99)
			}
		}
	}
	j.passLeft = math.Min(j.workingSet, j.dirtied)
	j.dirtied = 0
	j.passSent = 0
}

// switchOverLocked pauses the guest and hands it to the destination. Pre-copy
// sends the remainder while paused (downtime = remainder/bandwidth + the fixed
// overhead); post-copy resumes the guest on the destination at once and pulls
// the remainder afterwards. A host in this process takes over at once; one in
// another process is told from a goroutine so a slow peer does not hold up the
// clock (until it answers, both hosts list the VM, as with libvirt).
func (j *job) switchOverLocked(postCopy bool, at time.Duration) {
	rem := j.memRemaining()
	j.phase = phaseSwitching
	j.switchedAt = at
	j.passLeft, j.dirtied = rem, 0
	j.downtime = j.overhead
	if !postCopy {
		j.downtime += time.Duration(rem / j.bw * float64(time.Second))
	}
	reason := migrate.ReasonMigrated
	if postCopy {
		reason = migrate.ReasonPostCopy
	}
	if _, local := j.dest.(localPeer); local {
		// in-process: hand over at once, so no observer sees the VM on both hosts
		j.committedLocked(postCopy, j.dest.commit(context.Background(), j.id, reason))
		return
	}
	go func() { // a remote peer must not hold up the clock
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := j.dest.commit(ctx, j.id, reason)
		cancel()
		j.mu.Lock()
		defer j.mu.Unlock()
		j.committedLocked(postCopy, err)
	}()
}

// committedLocked finishes the switch-over once the destination answered.
func (j *job) committedLocked(postCopy bool, err error) {
	if j.phase != phaseSwitching {
		return
	}
	if err != nil {
		j.failLocked(fmt.Errorf("switch over: %w", err))
		return
	}
	if postCopy {
		// the source keeps a paused copy that serves the missing pages
		j.host.setReason(j.vmName, j, fsm.VMPaused, migrate.ReasonPostCopy)
		j.postCopy = true
		j.phase = phasePostcopy
		return
	}
	j.host.removeMigrated(j.vmName, j)
	j.memSent += j.passLeft
	j.passLeft = 0
	j.completeLocked()
}

// completeLocked ends a successful job: the destination keeps the completed
// job's stats, and after a post-copy the source's copy goes.
func (j *job) completeLocked() {
	j.phase = phaseDone
	st := j.statsLocked()
	st.Elapsed = j.endedAt
	if !j.postCopy {
		st.Elapsed = j.switchedAt + j.downtime
	}
	j.final = st
	if j.postCopy {
		j.host.removeMigrated(j.vmName, j)
		j.tellDest(migrate.ReasonMigrated)
	}
	if lp, ok := j.dest.(localPeer); ok {
		lp.h.recordEnded(j.vmName, migrate.EndedJob{Kind: migrate.JobMigrationIn, Outcome: migrate.JobCompleted, Stats: st})
	}
	j.finishLocked(nil)
}

// tellDest gives the destination's copy a new reason: at once in this
// process, from a goroutine for a remote peer (which must not hold up the
// clock).
func (j *job) tellDest(reason string) {
	if _, local := j.dest.(localPeer); local {
		_ = j.dest.mark(context.Background(), j.vmName, reason)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = j.dest.mark(ctx, j.vmName, reason)
	}()
}

// breakPostCopyLocked ends a post-copy job whose stream broke: both copies
// wait in "post-copy failed" (the destination's runs, stalled on the pages
// it lacks), and the source keeps the job for ResumePostCopy.
func (j *job) breakPostCopyLocked(cause error) {
	j.phase = phaseBroken
	j.final = j.statsLocked()
	j.host.setReason(j.vmName, j, fsm.VMPaused, migrate.ReasonPostCopyFailed)
	j.tellDest(migrate.ReasonPostCopyFailed)
	j.finishLocked(fmt.Errorf("migrate vm %q to %s: post-copy broke: %w", j.vmName, j.dest.name(), cause))
}

// failLocked ends the job with err; the VM stays on the source (which
// keeps the failed job's stats) and the destination drops its reservation.
func (j *job) failLocked(err error) {
	j.phase = phaseDone
	j.suspended = false // the guest dirties again once resumed (it stays paused if Suspend paused it)
	j.final = j.statsLocked()
	j.host.clearJob(j.vmName, j)
	outcome := migrate.JobFailed
	if errors.Is(err, ErrAborted) {
		outcome = migrate.JobCancelled
	}
	j.host.recordEnded(j.vmName, migrate.EndedJob{Kind: migrate.JobMigrationOut, Outcome: outcome, Stats: j.final, Error: err.Error()})
	release := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = j.dest.release(ctx, j.id) // best effort: the source already gave up
	}
	if _, local := j.dest.(localPeer); local {
		release() // at once, so the VM may be migrated again right away
	} else {
		go release() // a remote peer must not hold up the clock
	}
	j.finishLocked(fmt.Errorf("migrate vm %q to %s: %w", j.vmName, j.dest.name(), err))
}

func (j *job) finishLocked(err error) {
	j.err = err
	if j.stopTick != nil {
		j.stopTick()
	}
	close(j.done)
}

// statsLocked samples the job in libvirt's shape.
func (j *job) statsLocked() migrate.JobStats {
	memRem := j.memRemaining()
	if j.phase == phaseDone && j.err == nil {
		memRem = 0
	}
	st := migrate.JobStats{
		Elapsed:              j.last.Sub(j.start),
		MemTotal:             uint64(j.memTotal),
		MemProcessed:         uint64(j.memSent),
		MemRemaining:         uint64(memRem),
		MemIteration:         j.iteration,
		DiskTotal:            uint64(j.diskTotal),
		DiskProcessed:        uint64(j.diskSent),
		DiskRemaining:        uint64(j.diskTotal - j.diskSent),
		PostCopy:             j.postCopy,
		MaxDowntime:          j.maxDowntime,
		AutoConvergeThrottle: j.throttle,
		Downtime:             j.downtime,
	}
	if j.phase != phaseDone {
		st.MemBps = uint64(j.bw)
		if j.phase == phasePrecopy {
			st.MemDirtyRate = uint64(j.dirtyRate)
		}
	}
	st.DataTotal = st.MemTotal + st.DiskTotal
	st.DataProcessed = st.MemProcessed + st.DiskProcessed
	st.DataRemaining = st.MemRemaining + st.DiskRemaining
	return st
}

// Stats implements migrate.Job; after the end it returns the final sample.
func (j *job) Stats() (migrate.JobStats, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase >= phaseDone {
		return j.final, nil
	}
	return j.statsLocked(), nil
}

// Done implements migrate.Job.
func (j *job) Done() <-chan struct{} { return j.done }

// Err implements migrate.Job.
func (j *job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Result implements migrate.Job.
func (j *job) Result() migrate.JobStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.final
}

// Abort implements migrate.Job. It ends the job before returning; as with
// QEMU, a job in post-copy (or switching over) cannot be aborted.
func (j *job) Abort() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch j.phase {
	case phaseDone, phaseBroken:
		return fmt.Errorf("abort migration of vm %q: %w", j.vmName, ErrNoJob)
	case phaseSwitching:
		return fmt.Errorf("abort migration of vm %q: switch-over in progress: %w", j.vmName, ErrNoJob)
	case phasePostcopy:
		return fmt.Errorf("abort migration of vm %q: cannot abort in post-copy: %w", j.vmName, ErrPostCopy)
	}
	j.failLocked(ErrAborted)
	return nil
}

// StartPostCopy implements migrate.Job; the switch happens at the next step.
func (j *job) StartPostCopy() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.allowPostCopy:
		return fmt.Errorf("start post-copy of vm %q: job was started without AllowPostCopy: %w", j.vmName, ErrPostCopy)
	case j.phase >= phaseDone:
		return fmt.Errorf("start post-copy of vm %q: %w", j.vmName, ErrNoJob)
	case j.phase != phaseDisk && j.phase != phasePrecopy:
		return fmt.Errorf("start post-copy of vm %q: already switching: %w", j.vmName, ErrPostCopy)
	}
	j.wantPostCopy = true
	return nil
}

// SetMaxDowntime implements migrate.Job.
func (j *job) SetMaxDowntime(d time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase >= phaseDone {
		return fmt.Errorf("set max downtime of vm %q: %w", j.vmName, ErrNoJob)
	}
	if d <= 0 {
		return fmt.Errorf("set max downtime of vm %q: %v is not positive", j.vmName, d)
	}
	j.maxDowntime = d
	return nil
}

// SetBandwidth implements migrate.Job: the rest of the job runs at mib MiB/s.
func (j *job) SetBandwidth(mibps uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase >= phaseDone {
		return fmt.Errorf("set bandwidth of vm %q: %w", j.vmName, ErrNoJob)
	}
	if mibps == 0 {
		return fmt.Errorf("set bandwidth of vm %q: 0 MiB/s", j.vmName)
	}
	j.bw = float64(mibps) * mib
	return nil
}

// Suspend implements migrate.Job: the guest pauses on the source ("user",
// as virDomainSuspend leaves it) and dirties nothing until the job ends.
// After the switch-over it runs on the destination. A failed job leaves it
// paused, as libvirt does: resuming it is the job of the meshd that
// watches the job, or of whoever settles the migration when that meshd
// died (Host.Resume).
func (j *job) Suspend() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase != phaseDisk && j.phase != phasePrecopy {
		return fmt.Errorf("suspend vm %q: not in pre-copy: %w", j.vmName, ErrNoJob)
	}
	j.suspended = true
	j.host.setReason(j.vmName, j, fsm.VMPaused, migrate.ReasonUser)
	return nil
}

// InterruptPostCopy implements migrate.Job: a post-copy job breaks off
// (as libvirt's VIR_DOMAIN_ABORT_JOB_POSTCOPY does) and waits, paused on
// both hosts, for ResumePostCopy.
func (j *job) InterruptPostCopy() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.phase != phasePostcopy {
		return fmt.Errorf("interrupt post-copy of vm %q: not in post-copy: %w", j.vmName, ErrNoJob)
	}
	j.breakPostCopyLocked(ErrInterrupted)
	return nil
}

// resumed is a new job that continues a broken post-copy job's remainder,
// at the bandwidth p asks for.
func (j *job) resumed(p migrate.Params) *job {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := &job{
		host: j.host, dest: j.dest, id: j.id, vmName: j.vmName,
		clock: j.clock, period: j.period, overhead: j.overhead,
		done: make(chan struct{}), bw: j.bw, maxDowntime: j.maxDowntime,
		autoConverge: j.autoConverge, allowPostCopy: true, postCopy: true,
		phase: phasePostcopy, memTotal: j.memTotal, memSent: j.memSent,
		workingSet: j.workingSet, diskTotal: j.diskTotal, diskSent: j.diskSent,
		passLeft: j.passLeft, iteration: j.iteration, throttle: j.throttle,
		downtime: j.downtime, switchedAt: j.switchedAt,
	}
	if p.BandwidthMiB > 0 {
		n.bw = float64(p.BandwidthMiB) * mib
	}
	return n
}
