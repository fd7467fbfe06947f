package sim

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// A sim migration job belongs to its Host, not to whoever started it, as a
// libvirt job belongs to libvirtd: it runs on when the meshd that started it
// stops, a later caller re-attaches to it (Attach), reads it (Status), and
// resumes a broken post-copy (ResumePostCopy).

// findLocked returns the VM a ref names (by name, else by UUID).
func (h *Host) findLocked(ref migrate.DomainRef) (string, *vm) {
	if v, ok := h.vms[ref.Name]; ok && (ref.UUID == "" || v.spec.UUID == ref.UUID) {
		return ref.Name, v
	}
	if ref.UUID != "" {
		for name, v := range h.vms {
			if v.spec.UUID == ref.UUID {
				return name, v
			}
		}
	}
	return "", nil
}

// Status implements migrate.StatusReader: the VM with its state and reason,
// its outgoing job, an incoming reservation (the destination's paused copy
// of a pre-copy migration), and its last ended job.
func (h *Host) Status(_ context.Context, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	s := migrate.DomainStatus{Name: ref.Name, UUID: ref.UUID}
	h.mu.Lock()
	name, v := h.findLocked(ref)
	var j *job
	if v != nil {
		s.Name, s.UUID, s.Exists = name, v.spec.UUID, true
		s.State, s.Reason = v.state, v.reason
		s.PostCopy = v.reason == migrate.ReasonPostCopy
		s.PostCopyFailed = v.reason == migrate.ReasonPostCopyFailed
		j = v.job
	} else {
		for _, r := range h.incoming {
			if (ref.UUID == "" && r.spec.Name == ref.Name) || (ref.UUID != "" && r.spec.UUID == ref.UUID) {
				s.Name, s.UUID, s.Exists = r.spec.Name, r.spec.UUID, true
				s.State, s.Reason, s.Incoming = fsm.VMPaused, migrate.ReasonMigrating, true
				s.Job = &migrate.RunningJob{Kind: migrate.JobMigrationIn}
				break
			}
		}
	}
	if e, ok := h.ended[s.Name]; ok && s.Exists {
		s.Ended = &e
	}
	h.mu.Unlock()
	if j != nil { // sampled outside h.mu: a job locks itself, then its host
		st, _ := j.Stats()
		s.Job = &migrate.RunningJob{Kind: migrate.JobMigrationOut, Stats: st}
	}
	return s, nil
}

// Attach implements migrate.Hypervisor: the job this host runs for the VM,
// whoever started it. A broken post-copy is resumed, not attached to.
func (h *Host) Attach(_ context.Context, ref migrate.DomainRef, _ migrate.Params) (migrate.Job, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, v := h.findLocked(ref)
	switch {
	case v == nil:
		return nil, fmt.Errorf("attach to migration of vm %s on %s: %w", ref, h.spec.Name, migrate.ErrNoDomain)
	case v.job == nil || v.reason == migrate.ReasonPostCopyFailed:
		return nil, fmt.Errorf("attach to migration of vm %s on %s: %w", ref, h.spec.Name, migrate.ErrNoJob)
	}
	return v.job, nil
}

// ResumePostCopy implements migrate.Hypervisor: a new job continues the
// broken post-copy's remainder. It fails while either end's link is down.
func (h *Host) ResumePostCopy(_ context.Context, ref migrate.DomainRef, p migrate.Params) (migrate.Job, error) {
	h.mu.Lock()
	_, v := h.findLocked(ref)
	if v == nil || v.job == nil || v.reason != migrate.ReasonPostCopyFailed {
		h.mu.Unlock()
		return nil, fmt.Errorf("resume migration of vm %s on %s: no broken post-copy: %w", ref, h.spec.Name, migrate.ErrNoJob)
	}
	old := v.job
	down := h.linkDown
	h.mu.Unlock()
	if down || old.dest.linkDown() {
		return nil, fmt.Errorf("resume migration of vm %s from %s to %s: %w", ref, h.spec.Name, old.dest.name(), ErrLinkDown)
	}
	nj := old.resumed(p)
	h.mu.Lock()
	if v.job != old {
		h.mu.Unlock()
		return nil, fmt.Errorf("resume migration of vm %s on %s: %w", ref, h.spec.Name, ErrBusy)
	}
	v.job, v.reason = nj, migrate.ReasonPostCopy
	h.resumes++
	h.mu.Unlock()
	nj.tellDest(migrate.ReasonPostCopy)
	nj.begin()
	return nj, nil
}

// Peer implements migrate.Hypervisor: a host of this registry, or one
// behind Handler in another process (its meshd answers for it).
func (h *Host) Peer(_ context.Context, host, uri string) (migrate.Remote, error) {
	p, err := h.reg.resolve(uri, host)
	if err != nil {
		return nil, fmt.Errorf("peer %s of %s: %w", uri, h.spec.Name, err)
	}
	switch p := p.(type) {
	case localPeer:
		return peerView{p.h}, nil
	case httpPeer:
		return p, nil
	default:
		return nil, fmt.Errorf("peer %s of %s: %w", uri, h.spec.Name, ErrUnknownHost)
	}
}

// peerView is a host of this registry read by another: it does not answer
// while the host is down (SetDown).
type peerView struct{ h *Host }

func (p peerView) Status(ctx context.Context, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	p.h.mu.Lock()
	down := p.h.down
	p.h.mu.Unlock()
	if down {
		return migrate.DomainStatus{}, fmt.Errorf("status of vm %s on %s: %w", ref, p.h.spec.Name, ErrHostDown)
	}
	return p.h.Status(ctx, ref)
}

// AbortJob aborts the VM's outgoing job on the peer.
func (p peerView) AbortJob(ctx context.Context, ref migrate.DomainRef) error {
	p.h.mu.Lock()
	down := p.h.down
	p.h.mu.Unlock()
	if down {
		return fmt.Errorf("abort migration of vm %s on %s: %w", ref, p.h.spec.Name, ErrHostDown)
	}
	return p.h.abortJob(ctx, ref)
}

// Resume resumes the peer's paused VM (Host.Resume).
func (p peerView) Resume(ctx context.Context, ref migrate.DomainRef) error {
	p.h.mu.Lock()
	down := p.h.down
	p.h.mu.Unlock()
	if down {
		return fmt.Errorf("resume vm %s on %s: %w", ref, p.h.spec.Name, ErrHostDown)
	}
	return p.h.Resume(ctx, ref)
}

// Resume implements migrate.Resumer: a paused VM runs again ("unpaused");
// a running one is left alone, and neither side of a post-copy is resumed.
func (h *Host) Resume(_ context.Context, ref migrate.DomainRef) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, v := h.findLocked(ref)
	switch {
	case v == nil:
		return fmt.Errorf("resume vm %s on %s: %w", ref, h.spec.Name, migrate.ErrNoDomain)
	case v.state != fsm.VMPaused:
		return nil
	case v.servesPages():
		return fmt.Errorf("resume vm %s on %s: paused in a post-copy migration (%s), which only its migration resumes", ref, h.spec.Name, v.reason)
	}
	v.state, v.reason = fsm.VMRunning, ReasonUnpaused
	h.resumedGuests++
	return nil
}

// ReasonUnpaused is a VM's reason once Resume resumed it (libvirt's
// running reason "unpaused").
const ReasonUnpaused = "unpaused"

// ResumedGuests counts the paused VMs Resume resumed on this host.
func (h *Host) ResumedGuests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resumedGuests
}

// abortJob aborts the VM's outgoing job, whoever started it.
func (h *Host) abortJob(ctx context.Context, ref migrate.DomainRef) error {
	j, err := h.Attach(ctx, ref, migrate.Params{})
	if err != nil {
		return err
	}
	return j.Abort()
}

func (p peerView) Close() error { return nil }

// SetDown makes the host unreachable to its peers (true) or reachable
// again: Peer's reads of it fail, as a host that lost power does not
// answer. Its own calls still work (nothing on it runs while it is down).
func (h *Host) SetDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

// SetLinkDown takes the host's migration link down (true) or up: streams
// from and to the host stall while it is down, as when a cable is pulled
// or the interface is set down; none fails by itself.
func (h *Host) SetLinkDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.linkDown = down
}

// LinkDown reports whether the host's migration link is down.
func (h *Host) LinkDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.linkDown
}

// BreakMigrations breaks every migration stream from and to this host at
// once, as when the host dies and its peers' connections reset: a job still
// in pre-copy fails (the VM stays on its source), a job in post-copy breaks
// and waits for a resume. It returns how many jobs it broke.
func (h *Host) BreakMigrations() int {
	var jobs []*job
	for _, o := range h.reg.Hosts() {
		o.mu.Lock()
		for _, v := range o.vms {
			if v.job == nil {
				continue
			}
			if lp, ok := v.job.dest.(localPeer); o == h || (ok && lp.h == h) {
				jobs = append(jobs, v.job)
			}
		}
		o.mu.Unlock()
	}
	n := 0
	for _, j := range jobs {
		j.mu.Lock()
		switch j.phase {
		case phaseDisk, phasePrecopy:
			j.failLocked(ErrConnectionLost)
			n++
		case phasePostcopy:
			j.breakPostCopyLocked(ErrConnectionLost)
			n++
		}
		j.mu.Unlock()
	}
	return n
}

// setReason sets the state and reason of the VM j migrates, if j still
// holds it.
func (h *Host) setReason(name string, j *job, state, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vms[name]; ok && v.job == j {
		v.state, v.reason = state, reason
	}
}

// recordEnded keeps a VM's last ended migration job.
func (h *Host) recordEnded(name string, e migrate.EndedJob) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended[name] = e
}

// Resumes counts the post-copy resumes started from this host.
func (h *Host) Resumes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resumes
}

// countStart records one start of the migration id on a hypervisor.
func (r *Registry) countStart(id string) {
	if id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts[id]++
}

// Starts returns how many times each migration (Params.ID: migration and
// attempt) was started on the registry's hypervisors. A checker asserts
// that none was started twice: a restarted meshd must re-attach to a job,
// never start it again.
func (r *Registry) Starts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.starts)
}

var _ migrate.DirtyRateSampler = (*Host)(nil)

// SampleDirtyRate implements migrate.DirtyRateSampler at once (the sim
// knows its workloads): the VM's dirty rate, and all its memory in use.
func (h *Host) SampleDirtyRate(_ context.Context, ref migrate.DomainRef, _ time.Duration) (migrate.DirtyRate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.vms {
		if (ref.UUID != "" && v.spec.UUID == ref.UUID) || (ref.UUID == "" && v.spec.Name == ref.Name) {
			return migrate.DirtyRate{Bps: uint64(v.spec.DirtyMiBps * mib), InUseBytes: v.spec.MemoryMiB * mib}, nil
		}
	}
	return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s on %s: %w", ref, h.spec.Name, migrate.ErrNoDomain)
}
