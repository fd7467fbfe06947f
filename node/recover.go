package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// ownStatus reads this host's hypervisor about the attempt's VM, asking
// again every SettleRetry until it answers or op ends.
func (n *Node) ownStatus(op context.Context, a *attempt) (migrate.DomainStatus, error) {
	for {
		st, err := n.cfg.Hypervisor.Status(op, a.ref)
		if err == nil {
			return st, nil
		}
		a.log.Warn("read the migration's VM on this host's hypervisor", "err", err)
		if !sleepCtx(op, n.cfg.SettleRetry) {
			return st, op.Err()
		}
	}
}

// hostStatus reads what host's hypervisor (at uri) says of a VM: this
// host's own hypervisor directly, a peer's through Hypervisor.Peer (libvirt
// answers while the peer's meshd is down). nil when it cannot be read
// within PeerTimeout.
func (n *Node) hostStatus(ctx context.Context, host, uri string, ref migrate.DomainRef) *migrate.DomainStatus {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PeerTimeout)
	defer cancel()
	if host == n.cfg.Name {
		st, err := n.cfg.Hypervisor.Status(ctx, ref)
		if err != nil {
			return nil
		}
		return &st
	}
	if uri == "" {
		return nil
	}
	p, err := n.cfg.Hypervisor.Peer(ctx, host, uri)
	if err != nil {
		n.log.Debug("read a peer's hypervisor", "host", host, "uri", uri, "err", err)
		return nil
	}
	defer p.Close()
	st, err := p.Status(ctx, ref)
	if err != nil {
		n.log.Debug("read a peer's hypervisor", "host", host, "uri", uri, "err", err)
		return nil
	}
	return &st
}

// settleOwn finds out, from both hosts' hypervisors, what became of an
// attempt whose job ended while no one watched it (this meshd was down),
// or whose post-copy broke, and reports it (see migrate.Settle):
//
//   - the job still runs: it returns a Job attached to it;
//   - the guest runs on the destination and not here: Succeeded;
//   - the guest is here and not there: Failed, retried elsewhere;
//   - the post-copy broke and both copies wait: it resumes the migration
//     (VIR_MIGRATE_POSTCOPY_RESUME) and returns the resumed job, trying
//     again every SettleRetry while the migration network is down;
//   - the post-copy broke and a copy is gone: Failed, the guest lost;
//   - the guest runs on both hosts or on neither, or a host cannot be
//     read: the migration stays Running with the reason recorded
//     (Migration.Unsettled; an alarm for both and neither), and is read
//     again every SettleRetry until the hosts agree.
//
// An operator's cancel ends it with what is known. It returns nil once the
// attempt is reported, or when this meshd stops.
func (n *Node) settleOwn(op context.Context, a *attempt) migrate.Job {
	m := a.m
	// After an operator's cancel op has ended: the last reads, which decide
	// how the cancel ends the migration, get a context of their own.
	cctx, stop := context.WithCancel(context.Background())
	defer stop()
	waitNoted := false
	for {
		rd := op
		cancelled := a.j.cancelled.Load()
		if cancelled {
			rd = cctx
		} else if op.Err() != nil {
			n.interrupted(a, "settle it")
			return nil
		}
		src := n.hostStatus(rd, m.Source, "", a.ref)
		dst := n.hostStatus(rd, m.Dest, a.dest.HypervisorURI, a.ref)
		v := migrate.Settle(src, dst, m.Source, m.Dest)
		a.log.Info("settling the migration from the hypervisors", "verdict", v.Verdict, "facts", v.Reason)
		switch v.Verdict {
		case migrate.VerdictRunning:
			job, err := n.cfg.Hypervisor.Attach(rd, a.ref, a.params)
			switch {
			case err != nil:
			case cancelled:
				// the cancel aborts it; the next read settles where the guest is
				if err := job.Abort(); err != nil {
					a.log.Warn("abort the re-attached job for the cancel", "err", err)
				}
				select {
				case <-job.Done():
				case <-time.After(n.cfg.PeerTimeout):
				}
			default:
				a.log.Info("re-attached to the migration job the hypervisor runs")
				n.metrics.reattached.Inc()
				return job
			}
		case migrate.VerdictMoved:
			resumed := n.resumeLeftPaused(rd, m, m.Dest, a.dest.HypervisorURI, a.ref, dst, n.suspendedBy(a))
			n.settled(a, fsm.MigSucceeded, "the job ended while no meshd watched it: "+v.Reason+resumed, downtimeOf(dst), false, reasonCompleted)
			return nil
		case migrate.VerdictStayed:
			// the job ended unwatched: a guest it paused here is still paused
			resumed := n.resumeLeftPaused(rd, m, m.Source, "", a.ref, src, n.suspendedBy(a))
			if cancelled {
				n.settled(a, fsm.MigCancelled, "cancelled by operator: "+v.Reason+resumed, 0, false, reasonOperator)
			} else {
				n.settled(a, fsm.MigFailed, "the job ended while no meshd watched it: "+v.Reason+resumed, 0, true, reasonSettled)
			}
			return nil
		case migrate.VerdictLost:
			n.settled(a, fsm.MigFailed, "post-copy broke and the guest is lost: "+v.Reason, 0, false, reasonLost)
			return nil
		case migrate.VerdictPostCopyPaused:
			if cancelled {
				n.settled(a, fsm.MigCancelled, fmt.Sprintf("cancelled by operator while its post-copy was broken: the guest stays paused on %s "+
					"(post-copy failed) and its remaining pages on %s; resume it (virsh migrate --postcopy-resume) or destroy it by hand",
					m.Dest, m.Source), 0, false, reasonOperator)
				return nil
			}
			waits := fmt.Sprintf("post-copy broke: the guest waits, paused on %s, for the pages %s holds; "+
				"resuming as soon as the migration network allows", m.Dest, m.Source)
			if !waitNoted {
				// before the first try: a resume may take long to start
				n.unsettled(a, waits, false, nil)
				waitNoted = true
			}
			job, err := n.cfg.Hypervisor.ResumePostCopy(op, a.ref, a.params)
			if err == nil {
				err = n.awaitResumed(op, a, job)
			}
			if err == nil {
				a.log.Info("post-copy resumed")
				n.metrics.postCopyResumes.Inc()
				return job
			}
			if op.Err() != nil && !a.j.cancelled.Load() {
				n.interrupted(a, "resume its post-copy")
				return nil
			}
			a.log.Info("post-copy not resumed yet", "err", err)
			n.unsettled(a, fmt.Sprintf("%s (last try: %v)", waits, err), false, nil)
		default: // both, neither, unknown
			if cancelled {
				n.settled(a, fsm.MigCancelled, "cancelled by operator while its outcome was not known: "+v.Reason, 0, false, reasonOperator)
				return nil
			}
			alarm := v.Verdict == migrate.VerdictBoth || v.Verdict == migrate.VerdictNeither
			n.unsettled(a, v.Reason, alarm, []string{m.Source, m.Dest})
		}
		a.rep.heartbeat()
		if cancelled {
			sleepCtx(n.ctx, n.cfg.SettleRetry) // the job ran after all: read again
		} else {
			sleepCtx(op, n.cfg.SettleRetry)
		}
	}
}

// errResumeRefused: a post-copy resume that libvirt refused, or that broke
// again at once; awaitResumed wraps the job's error with it.
var errResumeRefused = errors.New("post-copy resume did not take")

// awaitResumed waits until a post-copy resume just started is seen to
// run: the source's copy has left "post-copy failed" (or left the host:
// the migration completed), or the job ended well. A nil error from
// Hypervisor.ResumePostCopy says nothing yet: libvirt's
// virDomainMigrateToURI3 with VIR_MIGRATE_POSTCOPY_RESUME blocks for the
// whole remaining migration, so the driver runs it in the job's goroutine,
// and a refusal arrives as the job's end. In the lab, while the cut link
// keeps the first stream's thread waiting for the destination, every
// resume is refused within milliseconds ("being actively monitored by
// another thread"): taking each such job for a resumed migration made the
// source resume, fail and resume again with no pause (36 times in 14 s,
// each logged "post-copy resumed"), and its watch cleared the reason the
// migration waits from the state. A refused resume is reported as
// errResumeRefused, and the caller waits SettleRetry before the next.
//
// It returns op's error when op ends first (this meshd stops; an
// operator's cancel): the resume runs on in libvirt, and whoever settles
// next finds it running or broken again.
//
// While the resume has not taken after resumeSlowAfter, the migration's
// unsettled reason says so, and after resumeStuckAfter an alarm stands and
// the reason names the likely cause: in the lab, with the link back,
// libvirt accepted a resume whose preparation on the destination then
// waited forever on the destination's QEMU, whose vCPU held the big lock
// waiting for a page (gdb: x86_cpu_exec_interrupt → do_interrupt_all →
// x86_cpu_tlb_fill → userfault) while the main loop waited for that lock
// to run libvirt's in-band migrate-recover. The migration stays Running
// on its attempt (never retried elsewhere: the guest's memory is split).
func (n *Node) awaitResumed(op context.Context, a *attempt, job migrate.Job) error {
	// a resume libvirt takes its time to start is no silent source
	defer a.rep.keepAlive(n.cfg.SettleRetry)()
	start := time.Now()
	var said time.Duration
	return awaitResumed(op, job, func(ctx context.Context) *migrate.DomainStatus {
		if waited := time.Since(start); waited-said >= resumeSlowAfter {
			said = waited.Truncate(resumeSlowAfter)
			why := "the destination's QEMU has not answered"
			if waited >= resumeStuckAfter {
				why = "the destination's QEMU has not run migrate-recover: libvirt 9.0 sends it in-band, and QEMU 7.2 " +
					"cannot run it while a vCPU waits for a missing page holding QEMU's big lock (seen in the lab: an " +
					"interrupt delivered under the lock); if so, the guest stays paused there until an operator destroys it"
			}
			n.unsettled(a, fmt.Sprintf("post-copy broke: the guest waits, paused on %s, for the pages %s holds; "+
				"libvirt accepted a resume %s ago and has not resumed it yet (%s)",
				a.m.Dest, a.m.Source, said, why), waited >= resumeStuckAfter, []string{a.m.Source, a.m.Dest})
		}
		return n.hostStatus(ctx, a.m.Source, "", a.ref)
	}, resumeCheckEvery)
}

// resumeSlowAfter and resumeStuckAfter: see Node.awaitResumed. A resume
// that runs leaves "post-copy failed" within a second in the lab.
const (
	resumeSlowAfter  = 10 * time.Second
	resumeStuckAfter = time.Minute
)

// resumeCheckEvery is how often awaitResumed reads the source's copy.
const resumeCheckEvery = 100 * time.Millisecond

// awaitResumed is Node.awaitResumed with the source's status read by src.
func awaitResumed(op context.Context, job migrate.Job, src func(context.Context) *migrate.DomainStatus, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-job.Done():
			if err := job.Err(); err != nil {
				return fmt.Errorf("%w: %w", errResumeRefused, err)
			}
			return nil
		case <-op.Done():
			return op.Err()
		case <-t.C:
		}
		if st := src(op); st != nil && (!st.Exists || (st.PostCopy && !st.PostCopyFailed)) {
			return nil
		}
	}
}

// settled reports an attempt's end found from the hypervisors.
func (n *Node) settled(a *attempt, st fsm.MigrationState, reason string, downtimeMs int64, retry bool, class string) {
	a.log.Info("migration settled from the hypervisors", "state", st, "reason", reason)
	if n.finish(a.m, st, reason, downtimeMs, retry) {
		n.countEnded(a.m.ID, a.m.Attempt, class)
	}
}

// unsettled records why the attempt's outcome is not known yet: an alarm
// stands while the guest runs on both hosts or neither.
func (n *Node) unsettled(a *attempt, reason string, alarm bool, hosts []string) {
	if err := n.noteUnsettled(n.ctx, a.m, reason, alarm, hosts); err != nil {
		a.log.Warn("record why the migration is not settled", "err", err)
	}
}

// noteUnsettled records a Running migration's unsettled reason and alarm,
// when they differ from the state's (an empty reason clears them).
func (n *Node) noteUnsettled(ctx context.Context, m *fsm.Migration, reason string, alarm bool, hosts []string) error {
	same := false
	n.fsm.Read(func(s *fsm.State) {
		cur := s.Migrations[m.ID]
		if cur == nil || cur.State != fsm.MigRunning || cur.Attempt != m.Attempt {
			same = true // over: nothing to record
			return
		}
		_, raised := s.Alarms[fsm.AlarmKey(fsm.AlarmMigrationUnsettled, s.MigrationVMKey(cur))]
		same = cur.Unsettled == reason && raised == alarm
	})
	if same {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := n.withLeaderRetry(ctx, fsm.CmdUnsettled, fsm.Unsettled{ID: m.ID, Attempt: m.Attempt, Reason: reason,
		Alarm: alarm, Hosts: hosts, At: time.Now().UTC()})
	return err
}

// interrupted logs an attempt this meshd stops following: it stops, or
// the attempt ended in the state meanwhile.
func (n *Node) interrupted(a *attempt, doing string) {
	a.log.Info("stopped following the migration", "while", doing, "meshd_stopping", n.ctx.Err() != nil)
}

// downtimeOf reads the switch-over pause from the destination's completed
// incoming job, 0 when it kept none.
func downtimeOf(dst *migrate.DomainStatus) int64 {
	if dst == nil || dst.Ended == nil || dst.Ended.Outcome != migrate.JobCompleted || dst.Ended.Kind != migrate.JobMigrationIn {
		return 0
	}
	return dst.Ended.Stats.Downtime.Milliseconds()
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fsmConsumed says whether this replica's state holds every command up to
// Raft index upTo. Raft's AppliedIndex counts the entries it has handed to
// the FSM's goroutine, not those the FSM applied (raft's own doc says so):
// a restarted meshd that trusted it read its state while the log's tail
// was still on its way, saw an attempt Running that it had seen end, and
// started it again (the fault matrix: "m1#1 started 2 times", attempt 2
// had succeeded meanwhile). The FSM sees commands only, so the wanted index
// is the last command at or below upTo; an entry no longer in the log is in
// a snapshot, which Raft restores before it counts it applied.
func (n *Node) fsmConsumed(upTo uint64) bool {
	var want uint64
	for i, k := upTo, 0; i > 0 && k < 64; i, k = i-1, k+1 {
		var l raft.Log
		if err := n.boltStore.GetLog(i, &l); err != nil {
			break
		}
		if l.Type == raft.LogCommand {
			want = i
			break
		}
	}
	return n.fsm.Index() >= want
}

// postCopyStallNote and postCopyStallAlarm: see Node.stallNoter.
const (
	postCopyStallNote  = 10 * time.Second
	postCopyStallAlarm = time.Minute
)

// stallNoter wraps a post-copy job's reports: while its remaining data
// does not fall for postCopyStallNote, the migration's unsettled reason
// says so (in steps of postCopyStallNote), with an alarm from
// postCopyStallAlarm on, and the reason is cleared when it falls again.
// Watch keeps such a stream open (migrate.DefaultPostCopyStreamTimeout):
// a cut link carries on by itself when it comes back, so the stall is
// the only sign of it. The notes are written off the sampling goroutine;
// wait returns once the last one is written, so that none lands after the
// caller's next note.
func (n *Node) stallNoter(a *attempt, report func(fsm.Progress)) (wrapped func(fsm.Progress), wait func()) {
	streamTimeout := n.cfg.Monitor.PostCopyStreamTimeout
	if streamTimeout <= 0 {
		streamTimeout = migrate.DefaultPostCopyStreamTimeout
	}
	clock := n.cfg.Monitor.Clock // Watch's (the sim's, in tests)
	if clock == nil {
		clock = time.Now
	}
	var (
		wg       sync.WaitGroup
		busy     atomic.Bool
		mu       sync.Mutex
		sent     string // the reason last written ("" cleared)
		low      uint64
		since    time.Time
		tracking bool
	)
	write := func(reason string, alarm bool) {
		mu.Lock()
		same := reason == sent
		mu.Unlock()
		if same || !busy.CompareAndSwap(false, true) {
			return // written, or being written: a later sample tries again
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer busy.Store(false)
			var hosts []string
			if alarm {
				hosts = []string{a.m.Source, a.m.Dest}
			}
			if err := n.noteUnsettled(n.ctx, a.m, reason, alarm, hosts); err != nil {
				a.log.Warn("record the post-copy stall", "err", err)
				return
			}
			mu.Lock()
			sent = reason
			mu.Unlock()
		}()
	}
	wrapped = func(p fsm.Progress) {
		report(p)
		if !p.PostCopy {
			return
		}
		now := clock()
		if !tracking || p.RemainingBytes < low {
			tracking, low, since = true, p.RemainingBytes, now
			write("", false)
			return
		}
		idle := now.Sub(since)
		if idle < postCopyStallNote {
			write("", false)
			return
		}
		write(fmt.Sprintf("post-copy stalled: no page has come from %s for %s (is the migration network down?); the guest waits on %s "+
			"for its pages. The stream stays open and carries on by itself when the network is back; it is broken off, to resume "+
			"on a new stream, only after %s", a.m.Source, idle.Truncate(postCopyStallNote), a.m.Dest, streamTimeout),
			idle >= postCopyStallAlarm)
	}
	return wrapped, wg.Wait
}
