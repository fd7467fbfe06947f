package virt

import (
	"context"
	"errors"
	"fmt"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

// Status implements migrate.StatusReader on this host's libvirt.
func (h *Hypervisor) Status(ctx context.Context, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	if err := ctx.Err(); err != nil {
		return migrate.DomainStatus{}, err
	}
	return statusOn(h.conn, h.uri, ref)
}

// lookup finds a domain by UUID when the ref has one, else by name.
func lookup(conn *libvirt.Connect, ref migrate.DomainRef) (*libvirt.Domain, error) {
	if ref.UUID != "" {
		return conn.LookupDomainByUUIDString(ref.UUID)
	}
	return conn.LookupDomainByName(ref.Name)
}

// statusOn reads a domain's state and reason, its job and the last ended
// job libvirt kept, from the connection conn (to uri, for errors).
//
// libvirt 9.0 samples a migration only on the source: virDomainGetJobStats
// on the destination of a running migration fails with "operation not
// supported", which is how an incoming job is told apart here. Completed
// stats are read with KEEP_COMPLETED, so a read never takes them from
// whoever reads next.
func statusOn(conn *libvirt.Connect, uri string, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	s := migrate.DomainStatus{Name: ref.Name, UUID: ref.UUID}
	dom, err := lookup(conn, ref)
	if errors.Is(err, libvirt.ERR_NO_DOMAIN) {
		return s, nil
	}
	if err != nil {
		return s, wrap(err, "status of vm %s on %s", ref, uri)
	}
	defer dom.Free()
	if s.Name, err = dom.GetName(); err != nil {
		return notGone(s, err, "status of vm %s on %s: name", ref, uri)
	}
	if s.UUID, err = dom.GetUUIDString(); err != nil {
		return notGone(s, err, "status of vm %s on %s: uuid", ref, uri)
	}
	st, reason, err := dom.GetState()
	if err != nil {
		return notGone(s, err, "status of vm %s on %s: state", ref, uri)
	}
	s.Exists = true
	s.State = stateName(st)
	s.Reason = reasonName(st, reason)
	switch {
	case st == libvirt.DOMAIN_RUNNING && libvirt.DomainRunningReason(reason) == libvirt.DOMAIN_RUNNING_POSTCOPY,
		st == libvirt.DOMAIN_PAUSED && libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_POSTCOPY:
		s.PostCopy = true
	case st == libvirt.DOMAIN_RUNNING && libvirt.DomainRunningReason(reason) == libvirt.DOMAIN_RUNNING_POSTCOPY_FAILED,
		st == libvirt.DOMAIN_PAUSED && libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED:
		s.PostCopyFailed = true
	}
	info, err := dom.GetJobStats(0)
	switch {
	case errors.Is(err, libvirt.ERR_OPERATION_UNSUPPORTED):
		s.Job = &migrate.RunningJob{Kind: migrate.JobMigrationIn}
	case errors.Is(err, libvirt.ERR_NO_DOMAIN):
		return migrate.DomainStatus{Name: s.Name, UUID: s.UUID}, nil
	case err != nil:
		return s, wrap(err, "status of vm %s on %s: job", ref, uri)
	case info.Type != libvirt.DOMAIN_JOB_NONE:
		s.Job = &migrate.RunningJob{Kind: jobKind(info), Stats: statsOf(info)}
	}
	// Paused for the switch-over on the source ("migrating") looks like an
	// incoming copy; only the destination has no outgoing job.
	if st == libvirt.DOMAIN_PAUSED && libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_MIGRATION &&
		(s.Job == nil || s.Job.Kind != migrate.JobMigrationOut) {
		s.Incoming = true
	}
	if done, err := dom.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED | libvirt.DOMAIN_JOB_STATS_KEEP_COMPLETED); err == nil {
		s.Ended = endedJob(done)
	}
	return s, nil
}

// notGone turns "the domain vanished while being read" (it just migrated
// away) into a status without it, and wraps any other error.
func notGone(s migrate.DomainStatus, err error, format string, args ...any) (migrate.DomainStatus, error) {
	if errors.Is(err, libvirt.ERR_NO_DOMAIN) {
		return migrate.DomainStatus{Name: s.Name, UUID: s.UUID}, nil
	}
	return s, wrap(err, format, args...)
}

// jobKind reads which way a job migrates; without the operation field
// (older libvirt) a job with stats on this side is taken as outgoing.
func jobKind(info *libvirt.DomainJobInfo) migrate.JobKind {
	if !info.OperationSet {
		return migrate.JobMigrationOut
	}
	switch info.Operation {
	case libvirt.DOMAIN_JOB_OPERATION_MIGRATION_OUT:
		return migrate.JobMigrationOut
	case libvirt.DOMAIN_JOB_OPERATION_MIGRATION_IN:
		return migrate.JobMigrationIn
	default:
		return migrate.JobOther
	}
}

// endedJob converts completed-job stats, nil when libvirt kept none.
func endedJob(info *libvirt.DomainJobInfo) *migrate.EndedJob {
	e := &migrate.EndedJob{Kind: jobKind(info), Stats: statsOf(info)}
	switch info.Type {
	case libvirt.DOMAIN_JOB_COMPLETED:
		e.Outcome = migrate.JobCompleted
	case libvirt.DOMAIN_JOB_FAILED:
		e.Outcome = migrate.JobFailed
	case libvirt.DOMAIN_JOB_CANCELLED:
		e.Outcome = migrate.JobCancelled
	default:
		return nil
	}
	if info.ErrorMessageSet {
		e.Error = info.ErrorMessage
	}
	return e
}

// reasonName words a state reason as virsh does for the reasons a
// migration meets; others as "reason N".
func reasonName(st libvirt.DomainState, reason int) string {
	switch st {
	case libvirt.DOMAIN_RUNNING:
		switch libvirt.DomainRunningReason(reason) {
		case libvirt.DOMAIN_RUNNING_BOOTED:
			return "booted"
		case libvirt.DOMAIN_RUNNING_MIGRATED:
			return migrate.ReasonMigrated
		case libvirt.DOMAIN_RUNNING_UNPAUSED:
			return "unpaused"
		case libvirt.DOMAIN_RUNNING_MIGRATION_CANCELED:
			return "migration canceled"
		case libvirt.DOMAIN_RUNNING_POSTCOPY:
			return migrate.ReasonPostCopy
		case libvirt.DOMAIN_RUNNING_POSTCOPY_FAILED:
			return migrate.ReasonPostCopyFailed
		}
	case libvirt.DOMAIN_PAUSED:
		switch libvirt.DomainPausedReason(reason) {
		case libvirt.DOMAIN_PAUSED_USER:
			return migrate.ReasonUser
		case libvirt.DOMAIN_PAUSED_MIGRATION:
			return migrate.ReasonMigrating
		case libvirt.DOMAIN_PAUSED_IOERROR:
			return "I/O error"
		case libvirt.DOMAIN_PAUSED_POSTCOPY:
			return migrate.ReasonPostCopy
		case libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED:
			return migrate.ReasonPostCopyFailed
		}
	case libvirt.DOMAIN_SHUTOFF:
		switch libvirt.DomainShutoffReason(reason) {
		case libvirt.DOMAIN_SHUTOFF_MIGRATED:
			return migrate.ReasonMigrated
		case libvirt.DOMAIN_SHUTOFF_DESTROYED:
			return "destroyed"
		case libvirt.DOMAIN_SHUTOFF_SHUTDOWN:
			return "shutdown"
		case libvirt.DOMAIN_SHUTOFF_FAILED:
			return "failed"
		}
	}
	return fmt.Sprintf("reason %d", reason)
}

// peer reads another host's libvirt over its own connection.
type peer struct {
	uri  string
	conn *libvirt.Connect
}

func (p *peer) Status(ctx context.Context, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	if err := ctx.Err(); err != nil {
		return migrate.DomainStatus{}, err
	}
	return statusOn(p.conn, p.uri, ref)
}

// AbortJob aborts the domain's job on the peer (virDomainAbortJob).
func (p *peer) AbortJob(ctx context.Context, ref migrate.DomainRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dom, err := lookup(p.conn, ref)
	if err != nil {
		return wrap(err, "abort migration of vm %s on %s", ref, p.uri)
	}
	defer dom.Free()
	if err := dom.AbortJob(); err != nil {
		return wrap(err, "abort migration of vm %s on %s", ref, p.uri)
	}
	return nil
}

// Resume resumes the paused domain on the peer (virDomainResume).
func (p *peer) Resume(ctx context.Context, ref migrate.DomainRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return resumeOn(p.conn, p.uri, ref)
}

// Resume implements migrate.Resumer on this host's libvirt.
func (h *Hypervisor) Resume(ctx context.Context, ref migrate.DomainRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return resumeOn(h.conn, h.uri, ref)
}

// resumeOn resumes a paused domain, leaving a running one and either side
// of a post-copy migration alone.
func resumeOn(conn *libvirt.Connect, uri string, ref migrate.DomainRef) error {
	dom, err := lookup(conn, ref)
	if err != nil {
		return wrap(err, "resume vm %s on %s", ref, uri)
	}
	defer dom.Free()
	st, reason, err := dom.GetState()
	if err != nil {
		return wrap(err, "resume vm %s on %s: state", ref, uri)
	}
	if st != libvirt.DOMAIN_PAUSED {
		return nil
	}
	if r := libvirt.DomainPausedReason(reason); r == libvirt.DOMAIN_PAUSED_POSTCOPY || r == libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED {
		return fmt.Errorf("resume vm %s on %s: paused in a post-copy migration (%s), which only its migration resumes", ref, uri, reasonName(st, reason))
	}
	if err := dom.Resume(); err != nil {
		return wrap(err, "resume vm %s on %s", ref, uri)
	}
	return nil
}

func (p *peer) Close() error {
	if _, err := p.conn.Close(); err != nil {
		return wrap(err, "close libvirt %s", p.uri)
	}
	return nil
}

// Peer implements migrate.Hypervisor: a connection to another host's
// libvirt (qemu+tls://MGMT/system, with this host's client certificate).
// Connecting to a host that is down can take as long as TCP gives up, so
// ctx bounds the wait; a connection that arrives later is closed.
func (h *Hypervisor) Peer(ctx context.Context, _, uri string) (migrate.Remote, error) {
	type result struct {
		conn *libvirt.Connect
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := libvirt.NewConnect(uri)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, wrap(r.err, "connect to libvirt %s", uri)
		}
		return &peer{uri: uri, conn: r.conn}, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.conn != nil {
				_, _ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to libvirt %s: %w", uri, ctx.Err())
	}
}
