package virt

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

// baseFlags are set on every migration: live, driven by the source libvirtd
// (peer-to-peer, so meshd's connection may drop without killing the job), the
// guest defined on the destination and removed from the source on success,
// and aborted on a disk I/O error rather than paused half-way.
const baseFlags = libvirt.MIGRATE_LIVE | libvirt.MIGRATE_PEER2PEER |
	libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE |
	libvirt.MIGRATE_ABORT_ON_ERROR

// migrateArgs turns the mesh's settings into virDomainMigrateToURI3's typed
// parameters and flags. Max downtime is not among them: libvirt has no
// migration parameter for it, so Migrate sets it on the domain instead.
func migrateArgs(p migrate.Params) (*libvirt.DomainMigrateParameters, libvirt.DomainMigrateFlags) {
	flags := baseFlags
	params := &libvirt.DomainMigrateParameters{}
	if p.MigrateURI != "" {
		params.URISet, params.URI = true, p.MigrateURI
	}
	if p.BandwidthMiB > 0 {
		params.BandwidthSet, params.Bandwidth = true, p.BandwidthMiB
	}
	if p.AutoConverge {
		flags |= libvirt.MIGRATE_AUTO_CONVERGE
	}
	if p.Parallel > 1 && !p.AllowPostCopy {
		// QEMU 7.2 refuses multifd together with post-copy: a job that
		// may switch to post-copy runs on one connection.
		flags |= libvirt.MIGRATE_PARALLEL
		params.ParallelConnectionsSet, params.ParallelConnections = true, p.Parallel
	}
	if p.AllowPostCopy {
		flags |= libvirt.MIGRATE_POSTCOPY
	}
	if len(p.CopyStorage) > 0 {
		flags |= libvirt.MIGRATE_NON_SHARED_DISK
		params.MigrateDisksSet = true
		params.MigrateDisks = append([]string(nil), p.CopyStorage...)
	}
	if p.Unsafe {
		flags |= libvirt.MIGRATE_UNSAFE
	}
	if p.TLS {
		// QEMU encrypts memory and, with NON_SHARED_DISK, the NBD copy; the
		// destination verifies the source's client certificate and the
		// source checks the destination's against MigrateURI's address.
		flags |= libvirt.MIGRATE_TLS
	}
	return params, flags
}

// Migrate starts a live migration of the named domain to p.DestURI and
// returns at once; the returned Job reports progress and the outcome. ctx
// bounds only the start: once running, the job ends by completing, failing or
// Job.Abort, so a cancelled request cannot leave a guest half-moved.
//
// The initial max downtime is set on the domain before the job starts (QEMU
// keeps it as a migration parameter), so even a migration that converges in
// its first pass honours it; setting it once the job appears would race that.
func (h *Hypervisor) Migrate(ctx context.Context, name string, p migrate.Params) (migrate.Job, error) {
	if p.DestURI == "" {
		return nil, fmt.Errorf("migrate vm %q: no destination URI", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("migrate vm %q to %s: %w", name, p.DestURI, err)
	}
	dom, err := h.conn.LookupDomainByName(name)
	if err != nil {
		return nil, wrap(err, "migrate vm %q to %s", name, p.DestURI)
	}
	uuid, err := dom.GetUUIDString()
	if err != nil {
		dom.Free()
		return nil, wrap(err, "migrate vm %q to %s: uuid", name, p.DestURI)
	}
	if p.MaxDowntime > 0 {
		if err := dom.MigrateSetMaxDowntime(uint64(p.MaxDowntime/time.Millisecond), 0); err != nil {
			dom.Free()
			return nil, wrap(err, "migrate vm %q to %s: set max downtime %s", name, p.DestURI, p.MaxDowntime)
		}
	}
	maxDT := p.MaxDowntime
	if maxDT == 0 {
		// Report the limit in force (QEMU's default is 300 ms). Read it now:
		// libvirt 9.0 blocks this query while a migration runs.
		if ms, err := dom.MigrateGetMaxDowntime(0); err == nil {
			maxDT = time.Duration(ms) * time.Millisecond
		}
	}
	j := newJob(dom, name, uuid, p, maxDT)
	j.srcURI = h.uri
	go j.run(0)
	return j, nil
}

// followEvery is how often an attached job is polled for its end.
const followEvery = 250 * time.Millisecond

// Attach implements migrate.Hypervisor: a Job for the outgoing migration
// libvirt runs for the domain, started by an earlier meshd (a peer-to-peer
// job runs on in the source libvirtd when its client dies). The Job's
// controls act on the domain as they would on a job started here; its end
// is found by polling. A domain whose post-copy broke still has its job in
// libvirt, but nothing runs: Attach refuses it (ErrNoJob) and the caller
// resumes it (ResumePostCopy) instead.
func (h *Hypervisor) Attach(ctx context.Context, ref migrate.DomainRef, p migrate.Params) (migrate.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("attach to migration of vm %s: %w", ref, err)
	}
	dom, err := lookup(h.conn, ref)
	if err != nil {
		return nil, wrap(err, "attach to migration of vm %s", ref)
	}
	name, uuid, err := domainIDs(dom)
	if err != nil {
		dom.Free()
		return nil, wrap(err, "attach to migration of vm %s", ref)
	}
	info, err := dom.GetJobStats(0)
	if err != nil {
		dom.Free()
		return nil, wrap(err, "attach to migration of vm %s: job stats", ref)
	}
	if info.Type == libvirt.DOMAIN_JOB_NONE || jobKind(info) != migrate.JobMigrationOut {
		dom.Free()
		return nil, fmt.Errorf("attach to migration of vm %s on %s: %w", ref, h.uri, migrate.ErrNoJob)
	}
	if st, reason, err := dom.GetState(); err == nil && st == libvirt.DOMAIN_PAUSED &&
		libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_POSTCOPY_FAILED {
		dom.Free()
		return nil, fmt.Errorf("attach to migration of vm %s on %s: post-copy broke, resume it: %w", ref, h.uri, migrate.ErrNoJob)
	}
	j := newJob(dom, name, uuid, p, p.MaxDowntime)
	if st := statsOf(info); st.PostCopy {
		j.postCopy = true
	}
	if st, reason, err := dom.GetState(); err == nil && st == libvirt.DOMAIN_PAUSED &&
		libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_USER {
		// the earlier meshd's policy paused it (suspend-workload): the
		// job resumes it wherever it ends up
		j.suspended = true
	}
	go j.follow(followEvery)
	return j, nil
}

// ResumePostCopy implements migrate.Hypervisor: virDomainMigrateToURI3 with
// VIR_MIGRATE_POSTCOPY_RESUME and the migration's settings (the disks were
// copied before the switch, so no disk is copied again). libvirt refuses it
// while the broken stream's thread still waits for the destination ("being
// actively monitored by another thread") and while the network is down: the
// caller tries again.
func (h *Hypervisor) ResumePostCopy(ctx context.Context, ref migrate.DomainRef, p migrate.Params) (migrate.Job, error) {
	if p.DestURI == "" {
		return nil, fmt.Errorf("resume migration of vm %s: no destination URI", ref)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("resume migration of vm %s: %w", ref, err)
	}
	dom, err := lookup(h.conn, ref)
	if err != nil {
		return nil, wrap(err, "resume migration of vm %s", ref)
	}
	name, uuid, err := domainIDs(dom)
	if err != nil {
		dom.Free()
		return nil, wrap(err, "resume migration of vm %s", ref)
	}
	p.CopyStorage = nil
	p.AllowPostCopy = true
	j := newJob(dom, name, uuid, p, p.MaxDowntime)
	j.postCopy = true
	j.srcURI = h.uri
	go j.run(libvirt.MIGRATE_POSTCOPY_RESUME)
	return j, nil
}

func domainIDs(dom *libvirt.Domain) (name, uuid string, err error) {
	if name, err = dom.GetName(); err != nil {
		return "", "", err
	}
	uuid, err = dom.GetUUIDString()
	return name, uuid, err
}
