package virt

import (
	"context"
	"errors"
	"fmt"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// Domains lists every guest, active or only defined, with its live XML facts,
// state and disk sizes. A guest that disappears while being read (it just
// migrated away) is left out rather than failing the whole inventory.
func (h *Hypervisor) Domains(ctx context.Context) ([]migrate.Domain, error) {
	doms, err := h.conn.ListAllDomains(0)
	if err != nil {
		return nil, wrap(err, "list domains on %s", h.uri)
	}
	defer func() {
		for i := range doms {
			doms[i].Free()
		}
	}()
	out := make([]migrate.Domain, 0, len(doms))
	for i := range doms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := readDomain(&doms[i])
		if errors.Is(err, migrate.ErrNoDomain) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read domains on %s: %w", h.uri, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// readDomain reads one domain's XML, state and disk capacities.
func readDomain(dom *libvirt.Domain) (migrate.Domain, error) {
	name, err := dom.GetName()
	if err != nil {
		return migrate.Domain{}, wrap(err, "domain name")
	}
	domXML, err := dom.GetXMLDesc(0)
	if err != nil {
		return migrate.Domain{}, wrap(err, "domain %q XML", name)
	}
	d, err := parseDomainXML(domXML)
	if err != nil {
		return migrate.Domain{}, wrap(err, "domain %q", name)
	}
	st, _, err := dom.GetState()
	if err != nil {
		return migrate.Domain{}, wrap(err, "domain %q state", name)
	}
	d.State = stateName(st)
	for i := range d.Disks {
		// Sizes are "when available": an unreachable network disk or an
		// inactive domain's block device should not hide the guest.
		if bi, err := dom.GetBlockInfo(d.Disks[i].Target, 0); err == nil {
			d.Disks[i].SizeBytes = bi.Capacity
		}
	}
	return d, nil
}

// stateName maps libvirt's domain state to the fsm's VM states. A guest that
// is still shutting down or blocked on I/O is running as far as migration is
// concerned; a crashed one cannot be migrated live, like a shut-off one.
func stateName(st libvirt.DomainState) string {
	switch st {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED, libvirt.DOMAIN_SHUTDOWN:
		return fsm.VMRunning
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return fsm.VMPaused
	case libvirt.DOMAIN_SHUTOFF, libvirt.DOMAIN_CRASHED:
		return fsm.VMShutoff
	default:
		return fsm.VMUnknown
	}
}
