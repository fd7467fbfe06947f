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
	go j.run()
	return j, nil
}
