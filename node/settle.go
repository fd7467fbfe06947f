package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// The leader settles what no one reports. A Running migration's source
// watches its job and reports progress every sample; when the source is
// Down (or Left), or sent no report for Config.SettleAfter, the leader
// reads both hosts' hypervisors itself (through their HypervisorURI:
// libvirt answers while a host's meshd is down) and decides as the source
// would (migrate.Settle):
//
//   - the guest runs on the destination: Succeeded;
//   - the guest never reached the destination: Failed (retried elsewhere
//     when the source is up; a Down source cannot send it anywhere);
//   - a broken post-copy lost a copy: Failed, the guest lost;
//   - the job still runs, or its post-copy waits to resume: it stays
//     Running (the source's meshd, when it comes back, re-attaches or
//     resumes), with the reason recorded;
//   - the guest runs on both hosts or neither, or the hosts cannot be read:
//     it stays Running with the reason, and an alarm for both and neither.
//
// The settle bound: a migration whose source is Down is settled within
// gossip's failure detection + ReconcileInterval + 2 × PeerTimeout; a
// silent one within SettleAfter + ReconcileInterval + 2 × PeerTimeout
// (11.5 + 2 + 10 s with the defaults) — whenever the hypervisors can tell.
// Until they can, the migration keeps its slots: its job may still run and
// use the destination's memory and the network, so they are not handed to
// another migration. A cancel ends it at once with what is known (Cancel
// always ends a migration).
//
// A migration whose destination went Down is not touched: its source
// watches the job, which fails when the destination is really gone, and
// reports (a failure before the switch-over is retried elsewhere).

// settleWatch is the leader's view of the running migrations' reports.
type settleWatch struct {
	mu       sync.Mutex
	seen     map[string]seenReport // jobKey → the latest report and when the leader saw it
	inflight map[string]bool       // jobKey → being settled now
}

type seenReport struct {
	at    time.Time // Progress.At of the latest report
	since time.Time // when this leader first saw that report
}

// reset forgets everything: a new leader starts every migration's silence
// from its own start.
func (w *settleWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen, w.inflight = map[string]seenReport{}, map[string]bool{}
}

// settleUnreported starts settling every Running migration whose source is
// Down or Left, or silent for SettleAfter, or that an operator cancelled
// while its source is so. Each runs in its own goroutine, once at a time.
func (n *Node) settleUnreported(ctx context.Context) {
	now := time.Now()
	type todo struct {
		m    fsm.Migration
		why  string
		down bool
	}
	var list []todo
	w := &n.settle
	w.mu.Lock()
	if w.seen == nil {
		w.seen, w.inflight = map[string]seenReport{}, map[string]bool{}
	}
	n.fsm.Read(func(s *fsm.State) {
		live := map[string]bool{}
		for _, m := range s.Running() {
			key := jobKey(m)
			live[key] = true
			r, ok := w.seen[key]
			if !ok || !r.at.Equal(m.Progress.At) {
				r = seenReport{at: m.Progress.At, since: now}
				w.seen[key] = r
			}
			if w.inflight[key] {
				continue
			}
			h := s.Hosts[m.Source]
			switch {
			case h == nil || h.State == fsm.HostDown || h.State == fsm.HostLeft:
				st := "gone"
				if h != nil {
					st = string(h.State)
				}
				list = append(list, todo{*m, fmt.Sprintf("its source %s is %s", m.Source, st), true})
			case now.Sub(r.since) >= n.cfg.SettleAfter:
				list = append(list, todo{*m, fmt.Sprintf("its source %s sent no progress report for %s", m.Source,
					now.Sub(r.since).Round(100*time.Millisecond)), false})
			}
		}
		for key := range w.seen {
			if !live[key] {
				delete(w.seen, key)
			}
		}
	})
	for _, t := range list {
		w.inflight[jobKey(&t.m)] = true
	}
	w.mu.Unlock()
	for _, t := range list {
		n.go_(func() {
			defer func() {
				w.mu.Lock()
				delete(w.inflight, jobKey(&t.m))
				w.mu.Unlock()
			}()
			n.leaderSettle(ctx, &t.m, t.why, t.down)
		})
	}
}

// leaderSettle reads both hosts' hypervisors about one migration and ends
// it, or records why it cannot yet (see settleUnreported).
func (n *Node) leaderSettle(ctx context.Context, m *fsm.Migration, why string, srcDown bool) {
	var src, dst fsm.Host
	var ref migrate.DomainRef
	n.fsm.Read(func(s *fsm.State) {
		if h := s.Hosts[m.Source]; h != nil {
			src = *h
		}
		if h := s.Hosts[m.Dest]; h != nil {
			dst = *h
		}
		ref = migrate.DomainRef{Name: m.VM, UUID: m.VMUUID}
		if v := s.VMOf(m); v != nil {
			ref.UUID = v.UUID
		}
	})
	srcSt := n.hostStatus(ctx, m.Source, src.HypervisorURI, ref)
	dstSt := n.hostStatus(ctx, m.Dest, dst.HypervisorURI, ref)
	v := migrate.Settle(srcSt, dstSt, m.Source, m.Dest)
	log := n.log.With("migration", m.ID, "vm", m.VM, "source", m.Source, "dest", m.Dest)
	if v.Verdict == migrate.VerdictRunning && m.CancelRequested {
		// The operator cancelled a migration no meshd watches: abort the
		// job on the source's hypervisor, then settle what it left.
		if err := n.abortOn(ctx, m.Source, src.HypervisorURI, ref); err != nil {
			log.Warn("abort a cancelled migration's job on its source's hypervisor", "err", err)
		}
		deadline := time.Now().Add(n.cfg.PeerTimeout)
		for v.Verdict == migrate.VerdictRunning && time.Now().Before(deadline) && sleepCtx(ctx, 100*time.Millisecond) {
			srcSt = n.hostStatus(ctx, m.Source, src.HypervisorURI, ref)
			dstSt = n.hostStatus(ctx, m.Dest, dst.HypervisorURI, ref)
			v = migrate.Settle(srcSt, dstSt, m.Source, m.Dest)
		}
	}
	log.Info("settling an unreported migration from the hypervisors", "why", why, "verdict", v.Verdict, "facts", v.Reason)
	prefix := "settled by the leader (" + why + "): "
	end := func(st fsm.MigrationState, reason string, downtimeMs int64, retry bool, class string) {
		if _, err := n.propose(ctx, fsm.CmdFinish, fsm.Finish{ID: m.ID, Attempt: m.Attempt, State: st, Reason: reason,
			DowntimeMs: downtimeMs, Retry: retry, At: time.Now().UTC()}); err != nil {
			log.Debug("settle migration", "err", err)
			return
		}
		n.metrics.settledByLeader.WithLabelValues(string(v.Verdict)).Inc()
		n.countEnded(m.ID, m.Attempt, class)
	}
	// The source's meshd, which would have resumed a guest its job left
	// paused, did not report: the leader resumes it (through libvirt,
	// which answers while that meshd is down).
	suspended := m.Progress.SuspendedAtMs > 0
	switch {
	case v.Verdict == migrate.VerdictMoved:
		end(fsm.MigSucceeded, prefix+v.Reason+n.resumeLeftPaused(ctx, m, m.Dest, dst.HypervisorURI, ref, dstSt, suspended),
			downtimeOf(dstSt), false, reasonCompleted)
	case v.Verdict == migrate.VerdictStayed && m.CancelRequested:
		end(fsm.MigCancelled, "cancelled by operator; "+prefix+v.Reason+n.resumeLeftPaused(ctx, m, m.Source, src.HypervisorURI, ref, srcSt, suspended),
			0, false, reasonOperator)
	case v.Verdict == migrate.VerdictStayed:
		end(fsm.MigFailed, prefix+v.Reason+n.resumeLeftPaused(ctx, m, m.Source, src.HypervisorURI, ref, srcSt, suspended),
			0, !srcDown, reasonSettled)
	case v.Verdict == migrate.VerdictLost:
		end(fsm.MigFailed, "post-copy broke and the guest is lost; "+prefix+v.Reason, 0, false, reasonLost)
	case m.CancelRequested:
		// Cancel always ends a migration: with what is known. The VM's
		// record stays on the source; the hosts' inventories correct it
		// if the job moved it after all.
		end(fsm.MigCancelled, fmt.Sprintf("cancelled by operator while its outcome was not known (%s): %s", why, v.Reason), 0, false, reasonOperator)
	default:
		alarm := v.Verdict == migrate.VerdictBoth || v.Verdict == migrate.VerdictNeither
		reason := fmt.Sprintf("not settled (%s): %s", why, v.Reason)
		switch v.Verdict {
		case migrate.VerdictRunning:
			reason = fmt.Sprintf("%s; the job still runs on %s's hypervisor: it is settled when it ends, or watched again when %s's meshd is back",
				why, m.Source, m.Source)
		case migrate.VerdictPostCopyPaused:
			reason = fmt.Sprintf("%s; %s: %s's meshd resumes it when it is back", why, v.Reason, m.Source)
		}
		if err := n.noteUnsettled(ctx, m, reason, alarm, []string{m.Source, m.Dest}); err != nil {
			log.Debug("record an unsettled migration", "err", err)
		}
	}
}

// abortOn aborts a VM's migration job on the hypervisor at uri.
func (n *Node) abortOn(ctx context.Context, host, uri string, ref migrate.DomainRef) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PeerTimeout)
	defer cancel()
	p, err := n.cfg.Hypervisor.Peer(ctx, host, uri)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.AbortJob(ctx, ref)
}

// leftPaused reports whether src, the source's copy of a migration's guest,
// is paused by that migration with no job left to end the pause: paused
// for the switch-over ("migrating") with no job, or by the policy's
// suspend ("user") when the attempt suspended it. The meshd that watches a
// job resumes its guest when the job fails (migrate/virt's job does); when
// that meshd died, or the job ended unwatched, no one else would, and the
// guest would stand paused on a host where the state says it runs. A guest
// paused in a post-copy is left to the post-copy's resume.
func leftPaused(src *migrate.DomainStatus, suspended bool) bool {
	return pausedNoJob(src) && (src.Reason == migrate.ReasonMigrating || (src.Reason == migrate.ReasonUser && suspended))
}

// pausedNoJob: a guest paused with no job, outside any post-copy.
func pausedNoJob(st *migrate.DomainStatus) bool {
	return st != nil && st.Exists && st.State == fsm.VMPaused && st.Job == nil && !st.PostCopy && !st.PostCopyFailed
}

// resumeLeftPaused resumes the guest a migration left paused on host (its
// source when the guest stayed; its destination when the guest moved
// while the policy had paused it), as st reports it (see leftPaused), on
// this host's hypervisor or through host's HypervisorURI uri. It returns
// what it did in words for the migration's end, and so for the event log:
// "" when the guest was not left paused.
func (n *Node) resumeLeftPaused(ctx context.Context, m *fsm.Migration, host, uri string, ref migrate.DomainRef, st *migrate.DomainStatus, suspended bool) string {
	if !leftPaused(st, suspended) {
		if pausedNoJob(st) {
			// paused, but nothing shows this migration paused it: an
			// operator's pause is not ours to end (the leader, whose
			// proof is the progress reports, misses a pause the source's
			// meshd died before reporting)
			return fmt.Sprintf("; the guest is paused on %s (%s) and left so: nothing shows this migration paused it", host, st.Reason)
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PeerTimeout)
	defer cancel()
	var err error
	switch {
	case host == n.cfg.Name:
		err = n.cfg.Hypervisor.Resume(ctx, ref)
	case uri == "":
		err = fmt.Errorf("no hypervisor URI known for %s", host)
	default:
		var p migrate.Remote
		if p, err = n.cfg.Hypervisor.Peer(ctx, host, uri); err == nil {
			err = p.Resume(ctx, ref)
			_ = p.Close()
		}
	}
	log := n.log.With("migration", m.ID, "vm", m.VM, "host", host, "paused", st.Reason)
	if err != nil {
		log.Warn("could not resume the guest the migration left paused", "err", err)
		return fmt.Sprintf("; the guest is left paused on %s (%s) and could not be resumed: %v", host, st.Reason, err)
	}
	log.Info("resumed the guest the migration left paused")
	return fmt.Sprintf("; the guest was left paused on %s (%s) and is resumed there", host, st.Reason)
}

// suspendedBy reports whether the attempt's policy paused its guest: this
// host's journal says so (written before the pause), or a progress report.
func (n *Node) suspendedBy(a *attempt) bool {
	return n.journal.suspended(a.key) || a.m.Progress.SuspendedAtMs > 0 || (a.rep != nil && a.rep.lastProgress().SuspendedAtMs > 0)
}

// journaledJob records a policy's pause of the guest before it pauses it:
// in the start journal (startJournal.markSuspended), for this host's next
// meshd, and in the replicated state (Progress.SuspendedAtMs), for the
// leader. A source whose meshd died between the pause and its next
// progress report, and stayed down, left the leader no proof that the
// migration paused the guest: the leader settled the failed migration and
// left the guest paused, rightly refusing to end a pause it could not
// explain. With the pause committed first, the leader resumes it.
type journaledJob struct {
	migrate.Job
	n   *Node
	key string
	rep *reporter
}

// suspendCommitTimeout bounds the commit of a pause before it is made;
// without the commit the guest is not paused, and the migration ends as
// when the hypervisor refuses a pause (aborted, the guest running on).
const suspendCommitTimeout = 10 * time.Second

func (j journaledJob) Suspend() error {
	if err := j.n.journal.markSuspended(j.key); err != nil {
		return err // never a pause a crash could leave unexplained
	}
	if j.rep != nil {
		p := j.rep.lastProgress()
		if st, err := j.Job.Stats(); err == nil && st.Elapsed > 0 {
			p.ElapsedMs = st.Elapsed.Milliseconds()
		}
		p.SuspendedAtMs = max(p.ElapsedMs, 1)
		ctx, cancel := context.WithTimeout(j.n.ctx, suspendCommitTimeout)
		err := j.rep.commit(ctx, p)
		cancel()
		if err != nil {
			return fmt.Errorf("record the pause of the migration's guest before making it: %w", err)
		}
	}
	return j.Job.Suspend()
}

// resumeOwnLeftPaused resumes, after a job this meshd watched failed or
// was cancelled, the guest the job left paused here (a driver whose job
// resumes it already, as migrate/virt's does, leaves nothing to do).
func (n *Node) resumeOwnLeftPaused(a *attempt) string {
	src := n.hostStatus(n.ctx, a.m.Source, "", a.ref)
	return n.resumeLeftPaused(n.ctx, a.m, a.m.Source, "", a.ref, src, n.suspendedBy(a))
}
