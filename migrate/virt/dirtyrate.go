package virt

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

var _ migrate.DirtyRateSampler = (*Hypervisor)(nil)

// SampleDirtyRate measures the guest's dirty rate over period (whole
// seconds, at least one) with virDomainStartDirtyRateCalc in QEMU's page
// sampling mode, which needs no dirty log and leaves the guest alone, then
// reads the result from the domain's stats (libvirt reports whole MiB/s).
// The memory in use is the QEMU process's resident set, capped at the
// guest's memory: pages the guest never touched are not resident, and a
// pre-copy pass sends them almost free. The resident set also holds QEMU's
// own memory, so for a small guest it is its whole memory (an upper bound:
// the first pass is predicted no faster than it can be).
func (h *Hypervisor) SampleDirtyRate(ctx context.Context, ref migrate.DomainRef, period time.Duration) (migrate.DirtyRate, error) {
	secs := int(period.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	dom, err := lookup(h.conn, ref)
	if err != nil {
		return migrate.DirtyRate{}, wrap(err, "sample dirty rate of vm %s", ref)
	}
	defer dom.Free()
	if err := dom.StartDirtyRateCalc(secs, libvirt.DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING); err != nil {
		return migrate.DirtyRate{}, wrap(err, "sample dirty rate of vm %s: start", ref)
	}
	var r migrate.DirtyRate
	if err := waitDirtyRate(ctx, h.conn, dom, time.Duration(secs)*time.Second, &r); err != nil {
		return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s: %w", ref, err)
	}
	if stats, err := dom.MemoryStats(uint32(libvirt.DOMAIN_MEMORY_STAT_NR), 0); err == nil {
		for _, s := range stats {
			if libvirt.DomainMemoryStatTags(s.Tag) == libvirt.DOMAIN_MEMORY_STAT_RSS {
				r.InUseBytes = s.Val << 10
			}
		}
	}
	// QEMU's own memory (and TCG's code buffer) is resident too: never
	// count more than the guest has
	if kib, err := dom.GetMaxMemory(); err == nil && kib > 0 {
		r.InUseBytes = min(r.InUseBytes, kib<<10)
	}
	return r, nil
}

// waitDirtyRate polls the domain's dirty-rate stats until the calculation
// started for period is measured, or ctx ends.
func waitDirtyRate(ctx context.Context, conn *libvirt.Connect, dom *libvirt.Domain, period time.Duration, r *migrate.DirtyRate) error {
	deadline := time.NewTimer(period + 10*time.Second)
	defer deadline.Stop()
	first := time.NewTimer(period)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-first.C:
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := conn.GetAllDomainStats([]*libvirt.Domain{dom}, libvirt.DOMAIN_STATS_DIRTYRATE, 0)
		if err != nil {
			return wrap(err, "read")
		}
		if len(st) == 1 && st[0].DirtyRate != nil {
			d := st[0].DirtyRate
			if d.CalcStatusSet && libvirt.DomainDirtyRateStatus(d.CalcStatus) == libvirt.DOMAIN_DIRTYRATE_MEASURED && d.MegabytesPerSecondSet {
				r.Bps = uint64(max(0, d.MegabytesPerSecond)) << 20
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not measured %v after it started", period+10*time.Second)
		case <-tick.C:
		}
	}
}
