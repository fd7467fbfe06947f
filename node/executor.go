package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	cancelled bool // by the operator
	stale     bool // the leader ended this attempt (its peer went Down)
	done      chan struct{}

	bwMu sync.Mutex
	job  migrate.Job // nil until the hypervisor started it
	bw   uint64      // the cap the job runs at, MiB/s
}

// setBandwidth gives the job the cap the leader granted, if it runs at
// another: an auto-bandwidth cluster reshares its migration network as
// migrations start and end. A cap granted before the job started is
// applied when it starts.
func (j *runningJob) setBandwidth(mib uint64, log interface{ Warn(string, ...any) }) {
	j.bwMu.Lock()
	defer j.bwMu.Unlock()
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
		}
	}
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
			if m == nil || m.State != fsm.MigRunning || m.Attempt != attempt || m.Source != n.cfg.Name {
				if !j.stale && !isClosed(j.done) {
					j.stale = true
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
			case m.CancelRequested && !j.cancelled:
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
		if j := n.jobs[id]; j != nil && !j.cancelled {
			j.cancelled = true
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
		ctx, cancel := context.WithCancel(n.ctx)
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

func (n *Node) abortLocalJobs() {
	n.jobsMu.Lock()
	defer n.jobsMu.Unlock()
	for _, j := range n.jobs {
		j.cancel()
	}
}

// runMigration drives one transfer end to end and reports the result. Every
// failure path ends with the VM running on exactly one host: the hypervisor
// aborts a failed job and the guest stays on the source.
func (n *Node) runMigration(ctx context.Context, m *fsm.Migration, j *runningJob) {
	log := n.log.With("migration", m.ID, "vm", m.VM, "dest", m.Dest)
	var vm fsm.VM
	var dest fsm.Host
	var cl fsm.Cluster
	n.fsm.Read(func(s *fsm.State) {
		if v := s.VMOf(m); v != nil {
			vm = *v
		}
		if h := s.Hosts[m.Dest]; h != nil {
			dest = *h
		}
		cl = s.Cluster(m.Cluster)
	})
	if m.Progress.ElapsedMs > 0 {
		// Granted and started by an earlier run of this meshd: that job died
		// with it, and the guest is still here if the domain is.
		if n.finish(m, fsm.MigFailed, "source meshd restarted during the migration", 0, true) {
			n.countEnded(m.ID, m.Attempt, reasonSourceRestarted)
		}
		return
	}
	if m.Attempt == 1 && !m.StartedAt.IsZero() && m.StartedAt.After(m.CreatedAt) {
		n.metrics.queueWait.Observe(m.StartedAt.Sub(m.CreatedAt).Seconds())
	}
	stats, err := n.transfer(ctx, m, j, vm, dest, !cl.PlainMigrations(), log)
	switch {
	case err == nil:
		log.Info("migration succeeded", "downtime", stats.Downtime, "elapsed", stats.Elapsed)
		n.metrics.observeJob(resultSucceeded, stats)
		if n.finish(m, fsm.MigSucceeded, "", stats.Downtime.Milliseconds(), false) {
			n.countEnded(m.ID, m.Attempt, reasonCompleted)
		}
	case j.cancelled:
		n.metrics.observeJob(resultCancelled, stats)
		if n.finish(m, fsm.MigCancelled, "cancelled by operator: job aborted, VM stays on "+m.Source, 0, false) {
			n.countEnded(m.ID, m.Attempt, reasonOperator)
		}
	case j.stale:
		// The leader already ended this attempt; nothing to report.
	case n.ctx.Err() != nil:
		// This meshd is stopping; the restarted one (or the leader when this
		// host is declared Down) settles the migration.
	default:
		// A guest that cannot converge here will not converge elsewhere.
		retry := !errors.Is(err, migrate.ErrCompletionTimeout) && !errors.Is(err, migrate.ErrProgressTimeout)
		log.Warn("migration failed", "err", err)
		n.metrics.observeJob(resultFailed, stats)
		if n.finish(m, fsm.MigFailed, err.Error(), 0, retry) {
			n.countEnded(m.ID, m.Attempt, failureClass(err))
		}
	}
	n.syncInventory(n.ctx)
}

// transfer runs the hypervisor's job and watches it to the end. tls is the
// cluster's migration transport: plain streams carry the guest's memory and
// disks readable by anyone on the migration network, so each one is logged
// as a warning on the source, where the bytes leave.
func (n *Node) transfer(ctx context.Context, m *fsm.Migration, j *runningJob, vm fsm.VM, dest fsm.Host, tls bool, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) (migrate.JobStats, error) {
	if dest.Name == "" || vm.Name == "" {
		return migrate.JobStats{}, fmt.Errorf("migration %s: vm %q or destination %q unknown", m.ID, m.VM, m.Dest)
	}
	pol, err := migrate.PolicyByName(m.Policy)
	if err != nil {
		return migrate.JobStats{}, fmt.Errorf("migration %s: %w", m.ID, err)
	}
	var local []fsm.Disk
	var targets []string
	for _, d := range vm.Disks {
		if d.StorageDomain == "" {
			local = append(local, d)
			targets = append(targets, d.Target)
		}
	}
	params := pol.Params(migrate.Params{
		DestURI: dest.HypervisorURI, DestHost: dest.Name, MigrateURI: "tcp://" + dest.MigrationAddr,
		BandwidthMiB: m.GrantedMiB, CopyStorage: targets, Unsafe: n.cfg.UnsafeMigration, TLS: tls,
	})
	if !tls {
		log.Warn("migration streams unencrypted: cluster migration_transport is plain",
			"cluster", m.Cluster, "migrate_uri", params.MigrateURI)
	}
	if len(local) > 0 {
		if p, ok := n.cfg.Hypervisor.(DestDiskPreparer); ok {
			if err := p.PrepareDestDisks(ctx, dest.HypervisorURI, local); err != nil {
				return migrate.JobStats{}, fmt.Errorf("prepare disks of %s on %s: %w", vm.Name, dest.Name, err)
			}
		}
	}
	job, err := n.cfg.Hypervisor.Migrate(ctx, vm.Name, params)
	if err != nil {
		return migrate.JobStats{}, fmt.Errorf("start migration of %s to %s (transport %s): %w", vm.Name, dest.Name, transportName(tls), err)
	}
	log.Info("migration started", "bandwidth_mib", m.GrantedMiB, "policy", pol.Name, "copy_disks", len(targets),
		"transport", transportName(tls))
	j.attach(job, m.GrantedMiB)
	var now uint64 // a reshare committed while the job started
	n.fsm.Read(func(s *fsm.State) {
		if cur := s.Migrations[m.ID]; cur != nil && cur.State == fsm.MigRunning && cur.Attempt == m.Attempt {
			now = cur.GrantedMiB
		}
	})
	j.setBandwidth(now, n.log)
	mc := n.cfg.Monitor
	mc.MemBytes, mc.VM = vm.MemoryMiB<<20, vm.Name
	rep := newReporter(n, m.ID, m.Attempt)
	defer rep.close()
	return migrate.Watch(ctx, job, pol, mc, rep.report)
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
type reporter struct {
	n       *Node
	id      string
	attempt int
	mu      sync.Mutex
	latest  *fsm.Progress
	wake    chan struct{}
	done    chan struct{}
}

func newReporter(n *Node, id string, attempt int) *reporter {
	r := &reporter{n: n, id: id, attempt: attempt, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *reporter) report(p fsm.Progress) {
	r.mu.Lock()
	r.latest = &p
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		p := r.latest
		r.latest = nil
		r.mu.Unlock()
		if p != nil {
			ctx, cancel := context.WithTimeout(r.n.ctx, 5*time.Second)
			_, _ = r.n.propose(ctx, fsm.CmdProgress, fsm.ProgressUpdate{ID: r.id, Attempt: r.attempt, Progress: *p})
			cancel()
		}
	}
}

func (r *reporter) close() { close(r.done) }
