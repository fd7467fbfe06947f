package node

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// Who counts a migration: the host whose command ended it, once that command
// committed. For a migration that ran, that is its source host (it watched
// the job and reports the result, so it also has the job's duration,
// downtime and bytes for the histograms); for one the leader ended (a host
// went Down, no host can take it) the leader; for one cancelled while queued
// the host whose API took the cancel. Counting where the ending command was
// proposed, after it committed, counts each ending exactly once and survives
// a leader failover: a new leader does not start from zero for migrations it
// never saw. Sum over every host's target for the mesh's totals.

// Results of hostmesh_migrations_total.
const (
	resultSucceeded = "succeeded"
	resultFailed    = "failed"
	resultCancelled = "cancelled"
)

// Reason classes: a small fixed set (the free-text reason is in the
// migration record and in meshctl), so label values stay bounded.
const (
	reasonCompleted         = "completed"
	reasonOperator          = "operator"           // cancelled by an operator
	reasonDrainCancelled    = "drain_cancelled"    // its drain was cancelled or ran out of time
	reasonProgressTimeout   = "progress_timeout"   // no new low of remaining data for too long
	reasonCompletionTimeout = "completion_timeout" // ran past its time per GiB
	reasonNotConverging     = "not_converging"     // the policy ran out of actions
	reasonAborted           = "aborted"            // the hypervisor job was aborted outside the mesh
	reasonSettled           = "settled"            // the job ended unwatched; the hypervisors showed it failed
	reasonLost              = "lost"               // post-copy broke and a copy of the guest is gone
	reasonHostDown          = "host_down"          // a queued migration's source went Down or left
	reasonUnplaceable       = "unplaceable"        // no host passes the checks any more
	reasonHypervisor        = "hypervisor"         // any other error of the transfer
)

var failReasons = []string{reasonProgressTimeout, reasonCompletionTimeout, reasonNotConverging, reasonAborted,
	reasonSettled, reasonLost, reasonHostDown, reasonUnplaceable, reasonHypervisor}

// Refusal labels besides the check names.
const (
	refusedNoHost   = "no-host"  // placement: no host passes every check
	refusedRejected = "rejected" // the state refused the command (e.g. VM already held)
)

// migrationCounters are the series this host counts itself.
type migrationCounters struct {
	ended     *prometheus.CounterVec
	retries   *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	downtime  prometheus.Histogram
	dataSent  *prometheus.HistogramVec
	queueWait prometheus.Histogram

	leaderChanges   prometheus.Counter
	reattached      prometheus.Counter
	postCopyResumes prometheus.Counter
	settledByLeader *prometheus.CounterVec
}

func newMigrationCounters() migrationCounters {
	c := migrationCounters{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostmesh_migrations_total",
			Help: "Migrations ended, by result and reason class, counted by the host whose command ended them (the source for those that ran).",
		}, []string{"result", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostmesh_migration_retries_total",
			Help: "Failed attempts queued again for another host, by the reason class of the failure.",
		}, []string{"reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostmesh_migration_refusals_total",
			Help: "Migration requests this host's API refused, by failed check (one request may fail several).",
		}, []string{"check"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hostmesh_migration_duration_seconds",
			Help:    "Time the hypervisor's migration job ran, from start to switch-over or failure, by result.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"result"}),
		downtime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hostmesh_migration_downtime_seconds",
			Help:    "Guest pause at switch-over of succeeded migrations, as the hypervisor measured it.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10},
		}),
		dataSent: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hostmesh_migration_data_sent_bytes",
			Help:    "Memory and disk data the migration job sent, by result.",
			Buckets: prometheus.ExponentialBuckets(64<<20, 2, 15), // 64 MiB … 1 TiB
		}, []string{"result"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hostmesh_migration_queue_wait_seconds",
			Help:    "Time from queueing to the slot grant, observed by the source as the job starts.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600},
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostmesh_raft_leader_changes_total",
			Help: "Raft leaders this host saw elected.",
		}),
		reattached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostmesh_migrations_reattached_total",
			Help: "Migration jobs this host (the source) found still running on its hypervisor after a meshd restart and watched again.",
		}),
		postCopyResumes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostmesh_postcopy_resumes_total",
			Help: "Broken post-copy migrations this host (the source) resumed (VIR_MIGRATE_POSTCOPY_RESUME).",
		}),
		settledByLeader: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostmesh_migrations_settled_by_leader_total",
			Help: "Running migrations no source reported that the leader settled from the hosts' hypervisors, by verdict.",
		}, []string{"verdict"}),
	}
	// Every combination exists from the start, at 0: rate() over a series
	// that appears only with its first increment misses that increment.
	c.ended.WithLabelValues(resultSucceeded, reasonCompleted)
	c.ended.WithLabelValues(resultCancelled, reasonOperator)
	c.ended.WithLabelValues(resultCancelled, reasonDrainCancelled)
	for _, r := range failReasons {
		c.ended.WithLabelValues(resultFailed, r)
		c.retries.WithLabelValues(r)
	}
	for _, ch := range append(migrate.CheckNames(), refusedNoHost, refusedRejected) {
		c.refusals.WithLabelValues(ch)
	}
	for _, r := range []string{resultSucceeded, resultFailed, resultCancelled} {
		c.duration.WithLabelValues(r)
		c.dataSent.WithLabelValues(r)
	}
	for _, v := range []migrate.Verdict{migrate.VerdictMoved, migrate.VerdictStayed, migrate.VerdictLost} {
		c.settledByLeader.WithLabelValues(string(v))
	}
	return c
}

func (c *migrationCounters) register(reg *prometheus.Registry) {
	reg.MustRegister(c.ended, c.retries, c.refusals, c.duration, c.downtime, c.dataSent, c.queueWait, c.leaderChanges,
		c.reattached, c.postCopyResumes, c.settledByLeader)
}

// failureClass maps a transfer error to its reason class.
func failureClass(err error) string {
	switch {
	case errors.Is(err, migrate.ErrProgressTimeout):
		return reasonProgressTimeout
	case errors.Is(err, migrate.ErrCompletionTimeout):
		return reasonCompletionTimeout
	case errors.Is(err, migrate.ErrNotConverging):
		return reasonNotConverging
	case errors.Is(err, migrate.ErrAborted):
		return reasonAborted
	}
	return reasonHypervisor
}

// countEnded counts the end of attempt of migration id after this host's
// Finish committed: a retry if the state queued it again, else its final
// result. It reads the local replica, which has applied the entry by then
// (the leader applied it; a follower waited for it after forwarding).
func (n *Node) countEnded(id string, attempt int, reason string) {
	var st fsm.MigrationState
	var now int
	n.fsm.Read(func(s *fsm.State) {
		if m := s.Migrations[id]; m != nil {
			st, now = m.State, m.Attempt
		}
	})
	switch {
	case st == "":
	case now > attempt:
		n.metrics.retries.WithLabelValues(reason).Inc()
	case st == fsm.MigSucceeded:
		n.metrics.ended.WithLabelValues(resultSucceeded, reasonCompleted).Inc()
	case st == fsm.MigCancelled:
		n.metrics.ended.WithLabelValues(resultCancelled, reason).Inc()
	case st == fsm.MigFailed:
		n.metrics.ended.WithLabelValues(resultFailed, reason).Inc()
	}
}

// countCancelledAt counts the migrations a cancel entry stamped at ended
// while queued: they never ran, so no source will report them.
func (n *Node) countCancelledAt(at time.Time, match func(*fsm.Migration) bool, reason string) {
	k := 0
	n.fsm.Read(func(s *fsm.State) {
		for _, m := range s.Migrations {
			if m.State == fsm.MigCancelled && m.EndedAt.Equal(at) && match(m) {
				k++
			}
		}
	})
	if k > 0 {
		n.metrics.ended.WithLabelValues(resultCancelled, reason).Add(float64(k))
	}
}

// observeJob records a finished job's figures on its source.
func (c *migrationCounters) observeJob(result string, st migrate.JobStats) {
	if st.Elapsed > 0 {
		c.duration.WithLabelValues(result).Observe(st.Elapsed.Seconds())
	}
	c.dataSent.WithLabelValues(result).Observe(float64(st.DataProcessed))
	if result == resultSucceeded {
		c.downtime.Observe(st.Downtime.Seconds())
	}
}

// countRefusal counts a refused migrate request by its failed checks.
func (c *migrationCounters) countRefusal(err error) {
	var refused *migrate.RefusedError
	switch {
	case errors.As(err, &refused):
		for _, r := range refused.Failed {
			c.refusals.WithLabelValues(r.Name).Inc()
		}
	case errors.Is(err, migrate.ErrNoHost):
		c.refusals.WithLabelValues(refusedNoHost).Inc()
	case errors.Is(err, fsm.ErrRejected):
		c.refusals.WithLabelValues(refusedRejected).Inc()
	}
}
