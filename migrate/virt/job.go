package virt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

var _ migrate.Job = (*job)(nil)

// job is one virDomainMigrateToURI3 call running in its own goroutine.
//
// life guards the domain handle: calls on it hold the read lock, and the
// goroutine frees the handle under the write lock once the job ended, so no
// call can use a freed handle. mu guards the recorded facts.
type job struct {
	name, uuid string
	p          migrate.Params
	dom        *libvirt.Domain
	done       chan struct{}
	// srcURI, when set, is the source libvirt's URI: run opens its own
	// connection there for the long virDomainMigrateToURI3 call (see
	// migrateOwnConn).
	srcURI string

	life  sync.RWMutex
	ended bool

	mu          sync.Mutex
	err         error
	result      migrate.JobStats
	last        migrate.JobStats
	aborted     bool
	postCopy    bool
	suspended   bool // Suspend paused the guest on the source
	maxDowntime time.Duration
	// capEarly is a cap set before the stream sent anything (0: none):
	// libvirt sets the migration's bandwidth parameter when the transfer
	// begins, over a virDomainMigrateSetMaxSpeed made during the
	// destination's start, so Stats sets it again once data moves (seen in
	// the lab: a job started at 32 MiB/s and lowered to 16 at once ran at 32).
	capEarly uint64
}

func newJob(dom *libvirt.Domain, name, uuid string, p migrate.Params, maxDowntime time.Duration) *job {
	return &job{name: name, uuid: uuid, p: p, dom: dom, done: make(chan struct{}), maxDowntime: maxDowntime}
}

// run performs the migration and records how it ended. extra flags are
// added to the migration's own (VIR_MIGRATE_POSTCOPY_RESUME).
func (j *job) run(extra libvirt.DomainMigrateFlags) {
	params, flags := migrateArgs(j.p)
	j.finish(j.migrateOwnConn(params, flags|extra))
}

// migrateOwnConn makes the virDomainMigrateToURI3 call on a connection of
// its own to the source libvirt, and the job's other calls (its samples,
// caps, abort) stay on the shared one. libvirtd serves at most
// max_client_requests (default 5) calls of one client connection at once,
// and a peer-to-peer migration call lasts the whole migration: with four
// migrations on the shared connection (two transfers ending while the next
// two set up, a drain's wave end) every sample, probe and cap change of
// every job queued for the one slot left, behind any call that waits on a
// domain in its switch-over. The drain's hand-off then learnt that a
// transfer was sent only when another job's call returned. If the own
// connection cannot be had, the shared one is used as before.
func (j *job) migrateOwnConn(params *libvirt.DomainMigrateParameters, flags libvirt.DomainMigrateFlags) error {
	if j.srcURI == "" {
		return j.dom.MigrateToURI3(j.p.DestURI, params, flags)
	}
	conn, err := libvirt.NewConnect(j.srcURI)
	if err != nil {
		return j.dom.MigrateToURI3(j.p.DestURI, params, flags)
	}
	defer conn.Close()
	dom, err := conn.LookupDomainByUUIDString(j.uuid)
	if err != nil {
		return j.dom.MigrateToURI3(j.p.DestURI, params, flags)
	}
	defer dom.Free()
	return dom.MigrateToURI3(j.p.DestURI, params, flags)
}

// follow watches a job this process did not start (Attach): libvirt has no
// call that waits for another connection's job, so it polls the job's
// type until the job is gone, then reads how it ended.
func (j *job) follow(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if ended, err := j.poll(); ended {
			j.finish(err)
			return
		}
	}
}

// poll says whether the followed job ended, and with which error. The job
// ended when the domain left this host or stopped (switched over: nil),
// when its post-copy broke (the domain waits in "post-copy failed" for a
// resume), or when libvirt runs no job on it any more (then the completed
// job stats tell success from failure).
func (j *job) poll() (bool, error) {
	j.life.RLock()
	defer j.life.RUnlock()
	active, err := j.dom.IsActive()
	if errors.Is(err, libvirt.ERR_NO_DOMAIN) || (err == nil && !active) {
		return true, nil
	}
	if err != nil {
		return false, nil // libvirtd busy or restarting: ask again
	}
	if st, reason, err := j.dom.GetState(); err == nil && st == libvirt.DOMAIN_PAUSED &&
		libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED {
		return true, fmt.Errorf("post-copy migration broke: the guest waits, paused, for it to resume")
	}
	info, err := j.dom.GetJobStats(0)
	if err != nil || info.Type != libvirt.DOMAIN_JOB_NONE {
		return false, nil
	}
	done, err := j.dom.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED | libvirt.DOMAIN_JOB_STATS_KEEP_COMPLETED)
	if err == nil {
		if e := endedJob(done); e != nil {
			switch {
			case e.Outcome == migrate.JobCompleted:
				return true, nil
			case e.Error != "":
				return true, fmt.Errorf("migration job %s: %s", e.Outcome, e.Error)
			default:
				return true, fmt.Errorf("migration job %s", e.Outcome)
			}
		}
	}
	return true, fmt.Errorf("migration job ended with the guest still here, and libvirt kept no result")
}

// finish records how the job ended (err nil: success) and frees the domain.
func (j *job) finish(err error) {
	var res migrate.JobStats
	if err == nil {
		res = j.completedOnDest()
	} else {
		res = j.completedOnSource()
		if rerr := j.resumeOnSource(); rerr != nil {
			err = fmt.Errorf("%w; and the guest stays paused on the source: %v", err, rerr)
		}
	}

	j.life.Lock()
	j.ended = true
	j.dom.Free()
	j.life.Unlock()

	j.mu.Lock()
	if err != nil {
		if j.aborted {
			err = fmt.Errorf("migrate vm %q to %s: %w: %w", j.name, j.p.DestURI, ErrAborted, err)
		} else {
			err = wrap(err, "migrate vm %q to %s", j.name, j.p.DestURI)
		}
	}
	j.err = err
	res.PostCopy = res.PostCopy || j.postCopy
	if res.MaxDowntime == 0 {
		res.MaxDowntime = j.maxDowntime
	}
	j.result = res
	j.mu.Unlock()
	close(j.done)
}

// completedOnDest reads the finished job's stats from the destination: with
// UNDEFINE_SOURCE the source domain is gone, but the destination libvirtd
// keeps the completed incoming job (downtime, totals). If that cannot be
// read, the last sample taken while running stands in.
func (j *job) completedOnDest() migrate.JobStats {
	fallback := j.lastSample()
	conn, err := libvirt.NewConnect(j.p.DestURI)
	if err != nil {
		return fallback
	}
	defer conn.Close()
	dom, err := conn.LookupDomainByUUIDString(j.uuid)
	if err != nil {
		return fallback
	}
	defer dom.Free()
	var resumed time.Time
	if j.isSuspended() && resumePaused(dom) {
		resumed = time.Now()
	}
	// KEEP_COMPLETED: the result stays for whoever settles the migration
	// from the hypervisors later.
	info, err := dom.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED | libvirt.DOMAIN_JOB_STATS_KEEP_COMPLETED)
	if err != nil || info.Type == libvirt.DOMAIN_JOB_NONE {
		fallback.Resumed = resumed
		return fallback
	}
	st := statsOf(info)
	st.Resumed = resumed
	return st
}

func (j *job) isSuspended() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.suspended
}

// resumePaused resumes a guest the policy paused before the switch-over
// and that libvirt left paused on the destination: the migration carried
// the source's paused state over. A guest paused for another reason
// (post-copy failed, an I/O error) is not ours to resume.
func resumePaused(dom *libvirt.Domain) bool {
	st, reason, err := dom.GetState()
	if err == nil && st == libvirt.DOMAIN_PAUSED && (libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_USER ||
		libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_MIGRATION) {
		return dom.Resume() == nil
	}
	return false
}

// resumeOnSource resumes the guest on the source after a failed job that
// Suspend had paused: a failure must never leave a guest standing.
func (j *job) resumeOnSource() error {
	if !j.isSuspended() {
		return nil
	}
	st, _, err := j.dom.GetState()
	if err != nil {
		return wrap(err, "resume vm %q on the source: state", j.name)
	}
	if st != libvirt.DOMAIN_PAUSED {
		return nil
	}
	if err := j.dom.Resume(); err != nil {
		return wrap(err, "resume vm %q on the source", j.name)
	}
	return nil
}

// completedOnSource reads the failed job's final stats from the source, which
// keeps the guest after a failure.
func (j *job) completedOnSource() migrate.JobStats {
	info, err := j.dom.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED | libvirt.DOMAIN_JOB_STATS_KEEP_COMPLETED)
	if err != nil || info.Type == libvirt.DOMAIN_JOB_NONE {
		return j.lastSample()
	}
	return statsOf(info)
}

func (j *job) lastSample() migrate.JobStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.last
	// A switch to post-copy requested after the last sample is already a
	// fact: the guest runs on the destination from that moment on.
	s.PostCopy = s.PostCopy || j.postCopy
	return s
}

// Stats samples the running job. After the job ended it returns the final
// stats; a domain that vanished because the job is just finishing yields the
// last sample rather than an error.
func (j *job) Stats() (migrate.JobStats, error) {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return j.Result(), nil
	}
	info, err := j.dom.GetJobStats(0)
	if err != nil {
		if j.switchedOver(err) {
			return j.lastSample(), nil
		}
		return migrate.JobStats{}, wrap(err, "job stats of vm %q", j.name)
	}
	s := statsOf(info)

	j.mu.Lock()
	defer j.mu.Unlock()
	// Not read back with virDomainMigrateGetMaxDowntime: libvirt 9.0 blocks
	// that call until the migration ends.
	s.MaxDowntime = j.maxDowntime
	s.PostCopy = s.PostCopy || j.postCopy
	j.last = s
	if c := j.capEarly; c > 0 && s.DataProcessed > 0 {
		// an error (the job ending) leaves it for the next sample
		if j.dom.MigrateSetMaxSpeed(c, 0) == nil {
			j.capEarly = 0
		}
	}
	return s, nil
}

// switchedOver reports whether a stats error only means the guest already
// left this host: after the switch-over the source domain is inactive ("domain
// is not running") or, with UNDEFINE_SOURCE, gone, until MigrateToURI3
// returns and the job is marked ended.
func (j *job) switchedOver(err error) bool {
	if errors.Is(err, libvirt.ERR_NO_DOMAIN) {
		return true
	}
	if !errors.Is(err, libvirt.ERR_OPERATION_INVALID) {
		return false
	}
	active, aerr := j.dom.IsActive()
	return errors.Is(aerr, libvirt.ERR_NO_DOMAIN) || (aerr == nil && !active)
}

// Done is closed when the job ended.
func (j *job) Done() <-chan struct{} { return j.done }

// Err is nil after success; after Abort it wraps ErrAborted.
func (j *job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Result is the final stats once Done is closed (zero before).
func (j *job) Result() migrate.JobStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.result
}

// Abort cancels the job (virDomainAbortJob); the guest stays on the source.
func (j *job) Abort() error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("abort migration of vm %q: %w", j.name, ErrJobEnded)
	}
	j.mu.Lock()
	j.aborted = true
	j.mu.Unlock()
	if err := j.dom.AbortJob(); err != nil {
		return wrap(err, "abort migration of vm %q", j.name)
	}
	return nil
}

// Suspend pauses the guest on the source (virDomainSuspend) while the job
// runs: its memory stops changing, so pre-copy completes. The job resumes
// it on the destination if libvirt carried the pause over, and on the
// source if the job fails.
func (j *job) Suspend() error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("suspend vm %q: %w", j.name, ErrJobEnded)
	}
	if err := j.dom.Suspend(); err != nil {
		return wrap(err, "suspend vm %q during its migration", j.name)
	}
	j.mu.Lock()
	j.suspended = true
	j.mu.Unlock()
	return nil
}

// InterruptPostCopy breaks off a stalled post-copy
// (virDomainAbortJobFlags with VIR_DOMAIN_ABORT_JOB_POSTCOPY, libvirt ≥ 8.5):
// the domain pauses in "post-copy failed" on both hosts, ready to resume.
func (j *job) InterruptPostCopy() error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("interrupt post-copy of vm %q: %w", j.name, ErrJobEnded)
	}
	if err := j.dom.AbortJobFlags(libvirt.DOMAIN_ABORT_JOB_POSTCOPY); err != nil {
		return wrap(err, "interrupt post-copy of vm %q", j.name)
	}
	return nil
}

// StartPostCopy switches to post-copy (virDomainMigrateStartPostCopy); the
// job must have been started with AllowPostCopy.
func (j *job) StartPostCopy() error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("start post-copy of vm %q: %w", j.name, ErrJobEnded)
	}
	if err := j.dom.MigrateStartPostCopy(0); err != nil {
		return wrap(err, "start post-copy of vm %q", j.name)
	}
	j.mu.Lock()
	j.postCopy = true
	j.mu.Unlock()
	return nil
}

// SetMaxDowntime changes the allowed switch-over pause of the running job.
func (j *job) SetMaxDowntime(d time.Duration) error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("set max downtime of vm %q: %w", j.name, ErrJobEnded)
	}
	if err := j.dom.MigrateSetMaxDowntime(uint64(d/time.Millisecond), 0); err != nil {
		return wrap(err, "set max downtime %s of vm %q", d, j.name)
	}
	j.mu.Lock()
	j.maxDowntime = d
	j.mu.Unlock()
	return nil
}

// SetBandwidth changes the running job's cap (virDomainMigrateSetMaxSpeed).
func (j *job) SetBandwidth(mib uint64) error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.ended {
		return fmt.Errorf("set bandwidth of vm %q: %w", j.name, ErrJobEnded)
	}
	if mib == 0 {
		return fmt.Errorf("set bandwidth of vm %q: 0 MiB/s", j.name)
	}
	if err := j.dom.MigrateSetMaxSpeed(mib, 0); err != nil {
		return wrap(err, "set bandwidth %d MiB/s of vm %q", mib, j.name)
	}
	j.mu.Lock()
	if j.last.DataProcessed == 0 {
		j.capEarly = mib
	}
	j.mu.Unlock()
	return nil
}
