package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// DestDiskPreparer is implemented by hypervisors that must create the
// destination images before a live disk copy (libvirt).
type DestDiskPreparer interface {
	PrepareDestDisks(ctx context.Context, destURI string, disks []fsm.Disk) error
}

// runningJob is a migration this host is the source of.
type runningJob struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool // by the operator
	stale     atomic.Bool // the attempt ended in the state (settled by the leader)
	done      chan struct{}

	bwMu sync.Mutex
	job  migrate.Job // nil until the hypervisor started it
	bw   uint64      // the cap the job runs at, MiB/s
	// handedAt is when a hand-off (handOff) set bw ahead of the state,
	// whose cap for the job was staleMiB then: until the state's cap
	// changes, or handOffHold passed, the state is behind, not a decision.
	handedAt time.Time
	staleMiB uint64
}

// setBandwidth gives the job the cap the leader granted, if it runs at
// another: an auto-bandwidth cluster reshares its migration network as
// migrations start and end. A cap granted before the job started is
// applied when it starts. After a hand-off, the state's cap from before
// it is not applied (it would undo the hand-off until the leader's
// reshare commits) for up to handOffHold.
func (j *runningJob) setBandwidth(mib uint64, log interface{ Warn(string, ...any) }) {
	j.bwMu.Lock()
	defer j.bwMu.Unlock()
	if !j.handedAt.IsZero() {
		if mib == j.staleMiB && time.Since(j.handedAt) < handOffHold {
			return
		}
		j.handedAt = time.Time{}
	}
	if j.job == nil || mib == 0 || mib == j.bw {
		return
	}
	if err := j.job.SetBandwidth(mib); err != nil {
		log.Warn("set migration bandwidth", "bandwidth_mib", mib, "err", err)
		return
	}
	j.bw = mib
}

// attach records the started job and the cap it started with.
func (j *runningJob) attach(job migrate.Job, mib uint64) {
	j.bwMu.Lock()
	j.job, j.bw = job, mib
	j.bwMu.Unlock()
}

// executorLoop starts the transfer of every migration granted with this host
// as source, and aborts those the operator cancels. The two paired hosts do
// the work; the leader only holds the queue and the slots.
func (n *Node) executorLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		changed := n.fsm.Changed()
		n.executorPass()
		select {
		case <-n.ctx.Done():
			return
		case <-changed:
		case <-tick.C:
			n.pruneJournal()
		}
	}
}

// bootCatchUpLimit bounds how long a restarted node waits to apply the log
// it had on disk: a tail the new leader truncated never gets applied.
const bootCatchUpLimit = 30 * time.Second

// caughtUp says whether this replica applied what the leader committed and,
// since its start, everything its own log held on disk. After a restart
// Raft restores only the snapshot and applies the log's tail once a leader
// tells the commit index (a heartbeat may tell less than the replica had):
// until then the state can show a migration Running that this host started,
// saw end, and dropped from its start journal, and starting it again would
// run it twice (the fault matrix's seed 3 found it).
func (n *Node) caughtUp() bool {
	applied := n.raft.AppliedIndex()
	if n.raft.Leader() == "" || applied < n.raft.CommitIndex() {
		return false
	}
	if applied < n.bootIndex && time.Since(n.bootAt) <= bootCatchUpLimit {
		return false
	}
	return n.fsmConsumed(applied)
}

// stillMine waits until this replica has applied what the leader
// committed, then says whether m is still this host's Running attempt: a
// restarted meshd's replica may still show a migration that ended while it
// was down, which must not be started.
func (n *Node) stillMine(op context.Context, m *fsm.Migration) bool {
	for {
		if n.caughtUp() {
			break
		}
		if !sleepCtx(op, 20*time.Millisecond) {
			return false
		}
	}
	mine := false
	n.fsm.Read(func(s *fsm.State) {
		cur := s.Migrations[m.ID]
		mine = cur != nil && cur.State == fsm.MigRunning && cur.Attempt == m.Attempt && cur.Source == n.cfg.Name
	})
	return mine
}

// pruneJournal forgets the started attempts that are over in the state.
func (n *Node) pruneJournal() {
	keys := n.journal.keys()
	if len(keys) == 0 {
		return
	}
	n.fsm.Read(func(s *fsm.State) {
		for _, key := range keys {
			id, attempt := splitJobKey(key)
			if m := s.Migrations[id]; m != nil && (m.State.Final() || m.Attempt > attempt) {
				n.journal.forget(key)
			}
		}
	})
}

func (n *Node) executorPass() {
	var start []*fsm.Migration
	var cancel []string
	type reshare struct {
		j  *runningJob
		bw uint64
	}
	var shares []reshare
	var wait []chan struct{}
	n.fsm.Read(func(s *fsm.State) {
		// An attempt the leader ended (failed because its destination went
		// Down, or re-queued) must stop here too, before any retry starts.
		n.jobsMu.Lock()
		for key, j := range n.jobs {
			id, attempt := splitJobKey(key)
			m := s.Migrations[id]
			if isClosed(j.done) && (m == nil || m.State.Final() || m.Attempt != attempt) {
				// over, and this replica applied its end: nothing can
				// start it again
				delete(n.jobs, key)
				n.journal.forget(key)
				continue
			}
			if m == nil || m.State != fsm.MigRunning || m.Attempt != attempt || m.Source != n.cfg.Name {
				if !j.stale.Load() && !isClosed(j.done) {
					j.stale.Store(true)
					j.cancel()
				}
				if m != nil && !isClosed(j.done) {
					wait = append(wait, j.done)
				}
			}
		}
		n.jobsMu.Unlock()
		for _, m := range s.Running() {
			if m.Source != n.cfg.Name {
				continue
			}
			n.jobsMu.Lock()
			j, ok := n.jobs[jobKey(m)]
			n.jobsMu.Unlock()
			switch {
			case !ok:
				c := *m
				start = append(start, &c)
			case m.CancelRequested && !j.cancelled.Load():
				cancel = append(cancel, jobKey(m))
			default:
				shares = append(shares, reshare{j, m.GrantedMiB})
			}
		}
	})
	for _, s := range shares {
		s.j.setBandwidth(s.bw, n.log)
	}
	for _, id := range cancel {
		n.jobsMu.Lock()
		if j := n.jobs[id]; j != nil && !j.cancelled.Load() {
			j.cancelled.Store(true)
			j.cancel()
		}
		n.jobsMu.Unlock()
	}
	if len(start) > 0 && len(wait) > 0 {
		// Let aborted attempts release the hypervisor's job first.
		for _, d := range wait {
			select {
			case <-d:
			case <-time.After(30 * time.Second):
			}
		}
	}
	for _, m := range start {
		// The job's context ends with the attempt (cancelled by the
		// operator, or ended in the state), not with this meshd: a meshd
		// that stops detaches from its jobs (Config.Monitor.Detach) and
		// leaves them to the hypervisor.
		ctx, cancel := context.WithCancel(context.Background())
		j := &runningJob{cancel: cancel, done: make(chan struct{})}
		n.jobsMu.Lock()
		n.jobs[jobKey(m)] = j
		n.jobsMu.Unlock()
		// The entry stays after the job ends: until this replica applies the
		// Finish, the migration still looks Running and must not start twice.
		n.go_(func() {
			defer close(j.done)
			defer cancel()
			n.runMigration(ctx, m, j)
		})
	}
}

// jobKey names one attempt of a migration: a retry runs under the same ID
// and must start, while an attempt must never start twice.
func jobKey(m *fsm.Migration) string { return fmt.Sprintf("%s#%d", m.ID, m.Attempt) }

func splitJobKey(key string) (string, int) {
	id, a, _ := strings.Cut(key, "#")
	attempt, _ := strconv.Atoi(a)
	return id, attempt
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// runMigration drives one attempt of a migration this host is the source
// of, from wherever it stands, and reports its end. The hypervisor, not
// this process, owns the job: a job this meshd (or the one before it, which
// crashed) started runs on in libvirt, so the attempt begins by asking the
// hypervisor:
//
//   - a migration job runs for the VM: re-attach and watch it again, the
//     policy and the timeouts going on from the last progress reported;
//   - the attempt was started before (the start journal, or progress in
//     the state) but no job runs: it ended unwatched; settle it from both
//     hosts' hypervisors (settleOwn);
//   - else start it.
//
// Every end is reported from what the hypervisors say: success, a failure
// before the switch-over (the guest stays here; retried elsewhere unless it
// cannot converge anywhere), a broken post-copy (resumed, never retried),
// or, when the two hosts disagree, an alarm and no guess.
func (n *Node) runMigration(ctx context.Context, m *fsm.Migration, j *runningJob) {
	log := n.log.With("migration", m.ID, "vm", m.VM, "dest", m.Dest)
	rep := newReporter(n, m.ID, m.Attempt, m.Progress)
	defer rep.close()
	a, err := n.attemptOf(m)
	if err != nil {
		log.Warn("migration failed", "err", err)
		if n.finish(m, fsm.MigFailed, err.Error(), 0, true) {
			n.countEnded(m.ID, m.Attempt, reasonHypervisor)
		}
		return
	}
	a.j, a.rep, a.log = j, rep, log
	defer n.syncInventory(n.ctx)
	// ctx ends the attempt (and aborts its job); op also ends when this
	// meshd stops, which only detaches from the job.
	op, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(n.ctx, stop)()

	st, err := n.ownStatus(op, a)
	if err != nil {
		n.interrupted(a, "read its hypervisor")
		return
	}
	var job migrate.Job
	switch {
	case st.Migrating() && st.Job.Kind == migrate.JobMigrationOut && !st.PostCopyFailed:
		job, err = n.cfg.Hypervisor.Attach(op, a.ref, a.params)
		if err != nil {
			log.Info("migration job ended as meshd re-attached; settling it", "err", err)
		} else {
			log.Info("re-attached to the migration job the hypervisor runs", "elapsed", st.Job.Stats.Elapsed)
			n.metrics.reattached.Inc()
		}
	case n.journal.started(a.key) || m.Progress.ElapsedMs > 0 || st.PostCopyFailed:
		// started before, no job now: it ended while no one watched
	default:
		if !n.stillMine(op, m) {
			n.interrupted(a, "wait for this replica to catch up before starting")
			return
		}
		if m.Attempt == 1 && !m.StartedAt.IsZero() && m.StartedAt.After(m.CreatedAt) {
			n.metrics.queueWait.Observe(m.StartedAt.Sub(m.CreatedAt).Seconds())
		}
		stopBeat := a.rep.keepAlive(n.cfg.SettleRetry)
		n.predict(op, a)
		job, err = n.startJob(op, a)
		stopBeat()
		if err != nil {
			n.failed(a, migrate.JobStats{}, err)
			return
		}
	}
	for {
		if job == nil {
			if job = n.settleOwn(op, a); job == nil {
				return // settled, or this meshd stops
			}
		}
		if n.watchJob(ctx, a, job) {
			return
		}
		job = nil // a broken post-copy: settle (resume) it
	}
}

// endProbe is how often the monitor samples a transfer predicted to end
// before its next sample, in a cluster whose setups overlap transfers
// (migrate.MonitorConfig.EndProbe): a fifth of the 500 ms sample period,
// a libvirt stats call each, for the last half second of each pass.
const endProbe = 100 * time.Millisecond

// attempt is what one migration attempt runs with.
type attempt struct {
	m      *fsm.Migration
	key    string // jobKey
	vm     fsm.VM
	dest   fsm.Host
	ref    migrate.DomainRef
	pol    migrate.Policy
	pred   *fsm.Prediction // auto's prediction, reported with every sample
	params migrate.Params
	tls    bool
	local  []fsm.Disk // local disks copied live
	j      *runningJob
	rep    *reporter
	log    interface {
		Debug(string, ...any)
		Info(string, ...any)
		Warn(string, ...any)
	}
}

// attemptOf reads what an attempt needs from the state: the VM, its
// destination, the cluster's transport and the policy's settings.
func (n *Node) attemptOf(m *fsm.Migration) (*attempt, error) {
	a := &attempt{m: m, key: jobKey(m)}
	var cl fsm.Cluster
	n.fsm.Read(func(s *fsm.State) {
		if v := s.VMOf(m); v != nil {
			a.vm = *v
		}
		if h := s.Hosts[m.Dest]; h != nil {
			a.dest = *h
		}
		cl = s.Cluster(m.Cluster)
	})
	if a.dest.Name == "" || a.vm.Name == "" {
		return nil, fmt.Errorf("migration %s: vm %q or destination %q unknown", m.ID, m.VM, m.Dest)
	}
	pol, err := migrate.PolicyByName(m.Policy)
	if err != nil {
		return nil, fmt.Errorf("migration %s: %w", m.ID, err)
	}
	if pred := m.Progress.Prediction; pol.Name == migrate.PolicyAuto && pred != nil {
		// a re-attached or settled auto migration goes on with the
		// policy its prediction picked when it started
		p := *pred
		a.pred, pol = &p, migrate.AutoPolicy(p)
	}
	a.pol, a.tls = pol, !cl.PlainMigrations()
	a.ref = migrate.DomainRef{Name: a.vm.Name, UUID: a.vm.UUID}
	var targets []string
	for _, d := range a.vm.Disks {
		if d.StorageDomain == "" {
			a.local = append(a.local, d)
			targets = append(targets, d.Target)
		}
	}
	a.params = pol.Params(migrate.Params{
		DestURI: a.dest.HypervisorURI, DestHost: a.dest.Name, MigrateURI: "tcp://" + a.dest.MigrationAddr,
		BandwidthMiB: m.GrantedMiB, CopyStorage: targets, Unsafe: n.cfg.UnsafeMigration, TLS: a.tls,
		Parallel: migrate.Connections(m.Parallel, cl, a.vm.VCPUs),
		ID:       a.key,
	})
	return a, nil
}

// startJob starts the attempt on the hypervisor, once: the start journal
// records it first, so a meshd that crashes at any point after never
// starts it again. The cluster's transport decides TLS: plain streams carry
// the guest's memory and disks readable by anyone on the migration network,
// so each one is logged as a warning on the source, where the bytes leave.
func (n *Node) startJob(ctx context.Context, a *attempt) (migrate.Job, error) {
	if !a.tls {
		a.log.Warn("migration streams unencrypted: cluster migration_transport is plain",
			"cluster", a.m.Cluster, "migrate_uri", a.params.MigrateURI)
	}
	if err := n.journal.mark(a.key); err != nil {
		return nil, err
	}
	if len(a.local) > 0 {
		if p, ok := n.cfg.Hypervisor.(DestDiskPreparer); ok {
			if err := p.PrepareDestDisks(ctx, a.dest.HypervisorURI, a.local); err != nil {
				return nil, fmt.Errorf("prepare disks of %s on %s: %w", a.vm.Name, a.dest.Name, err)
			}
		}
	}
	job, err := n.cfg.Hypervisor.Migrate(ctx, a.vm.Name, a.params)
	if err != nil {
		return nil, fmt.Errorf("start migration of %s to %s (transport %s): %w", a.vm.Name, a.dest.Name, transportName(a.tls), err)
	}
	a.log.Info("migration started", "bandwidth_mib", a.m.GrantedMiB, "policy", a.pol.Name, "copy_disks", len(a.local),
		"transport", transportName(a.tls))
	return job, nil
}

// watchJob watches a running job to its end and reports it. It returns
// false only when the job's post-copy broke: the caller then resumes it.
func (n *Node) watchJob(ctx context.Context, a *attempt, job migrate.Job) bool {
	m := a.m
	a.j.attach(job, m.GrantedMiB)
	var now uint64 // a reshare committed while the job started
	var overlaps bool
	n.fsm.Read(func(s *fsm.State) {
		if cur := s.Migrations[m.ID]; cur != nil && cur.State == fsm.MigRunning && cur.Attempt == m.Attempt {
			now = cur.GrantedMiB
		}
		overlaps = s.Cluster(m.Cluster).Overlaps()
	})
	a.j.setBandwidth(now, n.log)
	n.unsettled(a, "", false, nil)
	for {
		mc := n.cfg.Monitor
		mc.MemBytes, mc.VM, mc.Detach = a.vm.MemoryMiB<<20, a.vm.Name, n.detach
		mc.Prediction = a.pred
		n.fsm.Read(func(s *fsm.State) {
			mc.LastFirstPass = lastMigration(s, fsm.VMKey(a.vm.UUID, a.vm.Name)).FirstPassBytes
		})
		if overlaps && mc.EndProbe == 0 {
			// the next transfer gets this one's cap once it reports
			// all sent: report it as soon as it is
			mc.EndProbe = endProbe
		}
		if prior := a.rep.lastProgress(); prior.ElapsedMs > 0 || len(prior.Actions) > 0 {
			mc.Prior = &prior
		}
		report := func(p fsm.Progress) {
			// every sample at debug level: where a transfer's time goes
			// (its passes, wire and fall rates) read from the log alone
			a.log.Debug("migration sample", "elapsed_ms", p.ElapsedMs, "iteration", p.Iteration,
				"remaining_mib", float64(p.RemainingBytes)/(1<<20), "processed_mib", float64(p.ProcessedBytes)/(1<<20),
				"mib_s", p.MiBps, "fall_mib_s", float64(p.FallBps)/(1<<20))
			a.rep.report(p)
		}
		if overlaps {
			handed := false
			sample := report
			report = func(p fsm.Progress) {
				sample(p)
				if !handed && fsm.TransferSent(p) {
					// sent (or its last pass about to be): this
					// host's next transfers get the cap now, not
					// after two Raft commits
					handed = true
					n.handOff(m, p)
				}
			}
		}
		report, notesWritten := n.stallNoter(a, report)
		stats, err := migrate.Watch(ctx, journaledJob{Job: job, n: n, key: a.key, rep: a.rep}, a.pol, mc, report)
		notesWritten()
		switch {
		case err == nil:
			a.log.Info("migration succeeded", "downtime", stats.Downtime, "elapsed", stats.Elapsed)
			n.metrics.observeJob(resultSucceeded, stats)
			// the job's last sample (what its first pass sent, when
			// it completed within it) goes into the record first: the
			// next prediction of the VM starts from it
			a.rep.flush()
			if n.finish(m, fsm.MigSucceeded, "", stats.Downtime.Milliseconds(), false) {
				n.countEnded(m.ID, m.Attempt, reasonCompleted)
			}
		case errors.Is(err, migrate.ErrDetached), n.ctx.Err() != nil:
			// This meshd stops and leaves the job to the hypervisor: the next
			// one re-attaches (or the leader settles it when this host is Down).
		case a.j.stale.Load():
			// The attempt already ended in the state; nothing to report.
		case errors.Is(err, migrate.ErrPostCopyBroken):
			a.log.Warn("post-copy broke; resuming it", "err", err)
			return false
		case a.j.cancelled.Load() && !isDone(job):
			// The abort did not take: the job is in post-copy, where the
			// guest already runs on the destination. It ends where it ends.
			a.log.Warn("cancel refused by the hypervisor (post-copy): watching the job to its end", "err", err)
			ctx = context.Background()
			continue
		case a.j.cancelled.Load():
			n.metrics.observeJob(resultCancelled, stats)
			if n.finish(m, fsm.MigCancelled, "cancelled by operator: job aborted, VM stays on "+m.Source+n.resumeOwnLeftPaused(a), 0, false) {
				n.countEnded(m.ID, m.Attempt, reasonOperator)
			}
		default:
			// Before the switch-over the hypervisor aborts a failed job and
			// the guest stays here; the hypervisors confirm it first.
			if dst := n.hostStatus(n.ctx, m.Dest, a.dest.HypervisorURI, a.ref); dst != nil && dst.Runs() && !dst.PostCopy && !dst.PostCopyFailed {
				src := n.hostStatus(n.ctx, m.Source, "", a.ref)
				if v := migrate.Settle(src, dst, m.Source, m.Dest); v.Verdict == migrate.VerdictMoved {
					n.settled(a, fsm.MigSucceeded, "the job reported "+err.Error()+", but "+v.Reason, downtimeOf(dst), false, reasonCompleted)
					return true
				}
			}
			n.failed(a, stats, err)
		}
		return true
	}
}

func isDone(j migrate.Job) bool {
	select {
	case <-j.Done():
		return true
	default:
		return false
	}
}

// failed reports a job that failed before the switch-over: the hypervisor
// aborted it and the guest stays here. A guest that could not converge here
// will not converge elsewhere; any other failure is retried on another host.
func (n *Node) failed(a *attempt, stats migrate.JobStats, err error) {
	retry := !errors.Is(err, migrate.ErrCompletionTimeout) && !errors.Is(err, migrate.ErrProgressTimeout)
	a.log.Warn("migration failed", "err", err)
	n.metrics.observeJob(resultFailed, stats)
	if n.finish(a.m, fsm.MigFailed, err.Error()+n.resumeOwnLeftPaused(a), 0, retry) {
		n.countEnded(a.m.ID, a.m.Attempt, failureClass(err))
	}
}

func transportName(tls bool) string {
	if tls {
		return fsm.TransportTLS
	}
	return fsm.TransportPlain
}

// finish reports an attempt's result and says whether it committed.
func (n *Node) finish(m *fsm.Migration, st fsm.MigrationState, reason string, downtimeMs int64, retry bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := n.withLeaderRetry(ctx, fsm.CmdFinish, fsm.Finish{ID: m.ID, Attempt: m.Attempt, State: st, Reason: reason, Actor: n.self(),
		DowntimeMs: downtimeMs, Retry: retry, At: time.Now().UTC()})
	if err != nil {
		n.log.Warn("report migration result", "migration", m.ID, "err", err)
		return false
	}
	return true
}

// reporter sends the latest progress sample to the leader without ever
// blocking the job monitor: a slow commit just skips intermediate samples.
//
// Every sample carries the time it was taken (Progress.At), so the leader
// sees a source that reports from one that went silent; while no job runs
// (an attempt being settled, a broken post-copy waiting to resume) the
// source repeats its last sample (heartbeat) for the same reason.
type reporter struct {
	n       *Node
	id      string
	attempt int
	mu      sync.Mutex
	sendMu  sync.Mutex // held while a sample is proposed: commits keep the samples' order
	latest  *fsm.Progress
	last    fsm.Progress // the latest sample reported, for heartbeats and re-attaching
	wake    chan struct{}
	done    chan struct{}
}

// newReporter starts a reporter whose last sample is prior (the state's).
func newReporter(n *Node, id string, attempt int, prior fsm.Progress) *reporter {
	r := &reporter{n: n, id: id, attempt: attempt, last: prior, wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.last.Actions = slices.Clone(prior.Actions)
	go r.loop()
	return r
}

func (r *reporter) report(p fsm.Progress) {
	p.At = time.Now().UTC()
	r.mu.Lock()
	r.latest, r.last = &p, p
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// heartbeat reports the last sample again, newly stamped.
func (r *reporter) heartbeat() { r.report(r.lastProgress()) }

// keepAlive heartbeats every d until the returned stop is called: the
// leader must not take a source preparing a job (creating a destination's
// disk images, say) for a silent one.
func (r *reporter) keepAlive(d time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-r.done:
				return
			case <-t.C:
				r.heartbeat()
			}
		}
	}()
	return func() { close(done) }
}

// lastProgress is the latest sample reported (or the state's at start).
func (r *reporter) lastProgress() fsm.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.last
	p.Actions = slices.Clone(p.Actions)
	return p
}

func (r *reporter) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.wake:
		}
		r.sendMu.Lock()
		r.mu.Lock()
		p := r.latest
		r.latest = nil
		r.mu.Unlock()
		if p != nil {
			ctx, cancel := context.WithTimeout(r.n.ctx, 5*time.Second)
			_, _ = r.n.propose(ctx, fsm.CmdProgress, fsm.ProgressUpdate{ID: r.id, Attempt: r.attempt, Progress: *p})
			cancel()
		}
		r.sendMu.Unlock()
	}
}

// flush commits the latest sample now, before the caller ends the
// migration: the loop may skip it, and a sample that arrives after the
// Finish is refused.
func (r *reporter) flush() {
	r.sendMu.Lock() // after a sample being sent, so the last one stays last
	defer r.sendMu.Unlock()
	r.mu.Lock()
	p := r.last
	r.latest = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.n.ctx, 5*time.Second)
	defer cancel()
	_, _ = r.n.propose(ctx, fsm.CmdProgress, fsm.ProgressUpdate{ID: r.id, Attempt: r.attempt, Progress: p})
}

// commit reports p and waits until the leader committed it (through a
// follower too), after any sample being sent and in place of any waiting:
// for a fact the state must hold before the source acts (see
// journaledJob.Suspend).
func (r *reporter) commit(ctx context.Context, p fsm.Progress) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	p.At = time.Now().UTC()
	r.mu.Lock()
	r.latest, r.last = nil, p
	r.last.Actions = slices.Clone(p.Actions)
	r.mu.Unlock()
	_, err := r.n.withLeaderRetry(ctx, fsm.CmdProgress, fsm.ProgressUpdate{ID: r.id, Attempt: r.attempt, Progress: p})
	return err
}

func (r *reporter) close() { close(r.done) }
