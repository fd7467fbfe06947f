package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// Migrate implements migrate.Hypervisor: it asks the destination to reserve
// room for the VM (the destination may refuse) and starts a job that runs in
// simulated time. It returns at once, as virDomainMigrateToURI3 does in a
// goroutine of the real driver.
func (h *Host) Migrate(ctx context.Context, name string, p migrate.Params) (migrate.Job, error) {
	dest, err := h.reg.resolve(p.DestURI, p.DestHost)
	if err != nil {
		return nil, fmt.Errorf("migrate vm %q to %s: %w", name, p.DestURI, err)
	}
	if lp, ok := dest.(localPeer); ok && lp.h == h {
		return nil, fmt.Errorf("migrate vm %q to %s: %w", name, p.DestURI, ErrSameHost)
	}

	h.reg.countStart(p.ID)
	h.mu.Lock()
	v, ok := h.vms[name]
	switch {
	case !ok:
		h.mu.Unlock()
		return nil, fmt.Errorf("migrate vm %q from %s: %w", name, h.spec.Name, migrate.ErrNoDomain)
	case v.job != nil:
		h.mu.Unlock()
		return nil, fmt.Errorf("migrate vm %q from %s: %w", name, h.spec.Name, ErrBusy)
	case v.state != fsm.VMRunning && v.state != fsm.VMPaused:
		h.mu.Unlock()
		return nil, fmt.Errorf("migrate vm %q from %s (state %s): %w", name, h.spec.Name, v.state, ErrNotRunning)
	}
	h.seq++
	id := fmt.Sprintf("%s/%s/%d", h.spec.Name, name, h.seq)
	spec := cloneSpec(v.spec)
	j := newJob(h, dest, id, spec, p)
	v.job = j // claim the VM now so a concurrent Migrate or Remove is refused
	rec := p
	rec.CopyStorage = slices.Clone(p.CopyStorage)
	h.lastParams[name] = rec
	h.mu.Unlock()

	if err := dest.reserve(ctx, id, h.spec.Name, spec); err != nil {
		h.clearJob(name, j)
		return nil, fmt.Errorf("migrate vm %q to %s: %w", name, dest.name(), err)
	}
	h.mu.Lock()
	j.fail, h.failOut = h.failOut, nil
	h.mu.Unlock()
	j.begin()
	return j, nil
}

// clearJob releases the VM's claim by j (the VM stays here).
func (h *Host) clearJob(name string, j *job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vms[name]; ok && v.job == j {
		v.job = nil
	}
}

// removeMigrated drops a VM that now runs on the destination.
func (h *Host) removeMigrated(name string, j *job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vms[name]; ok && v.job == j {
		delete(h.vms, name)
	}
}

// dirtyRate is the VM's current workload in bytes/s.
func (h *Host) dirtyRate(name string) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vms[name]; ok {
		return v.spec.DirtyMiBps * mib
	}
	return 0
}

// diskBytes sums the sizes of the disks a migration copies live.
func diskBytes(disks []fsm.Disk, copyTargets []string) float64 {
	var sum float64
	for _, d := range disks {
		if slices.Contains(copyTargets, d.Target) {
			sum += float64(d.SizeBytes)
		}
	}
	return sum
}
