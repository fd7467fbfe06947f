package sim

import (
	"context"
	"fmt"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// peer is the destination of a migration as its source sees it: a host in
// the same process or one behind Handler in another process. reserve runs
// when the job starts (the destination may refuse), commit at switch-over
// (the VM then runs on the destination; in post-copy with reason
// "post-copy"), release when the job fails, mark when a post-copy breaks,
// resumes or ends (the destination's copy takes that reason).
type peer interface {
	name() string
	reserve(ctx context.Context, id, source string, spec VMSpec) error
	commit(ctx context.Context, id, reason string) error
	release(ctx context.Context, id string) error
	mark(ctx context.Context, vm, reason string) error
	// linkDown reports whether the destination's migration link is down
	// (known only for a host in this process).
	linkDown() bool
}

// localPeer is a destination host in the same Registry.
type localPeer struct{ h *Host }

func (p localPeer) name() string { return p.h.spec.Name }
func (p localPeer) reserve(_ context.Context, id, source string, spec VMSpec) error {
	return p.h.acceptReserve(id, source, spec)
}
func (p localPeer) commit(_ context.Context, id, reason string) error {
	return p.h.acceptCommit(id, reason)
}
func (p localPeer) release(_ context.Context, id string) error { return p.h.acceptRelease(id) }
func (p localPeer) mark(_ context.Context, vm, reason string) error {
	return p.h.acceptMark(vm, reason)
}
func (p localPeer) linkDown() bool { return p.h.LinkDown() }

// acceptReserve admits an incoming VM: its memory is held from now on.
func (h *Host) acceptReserve(id, source string, spec VMSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.failIn; err != nil {
		h.failIn = nil
		return fmt.Errorf("accept vm %q from %s on %s: %w", spec.Name, source, h.spec.Name, err)
	}
	if err := h.admitLocked(spec); err != nil {
		return fmt.Errorf("accept vm %q from %s on %s: %w", spec.Name, source, h.spec.Name, err)
	}
	h.incoming[id] = reservation{spec: cloneSpec(spec), source: source}
	return nil
}

// acceptCommit turns a reservation into a running VM: the switch-over.
// reason is "migrated", or "post-copy" while the pages still come.
func (h *Host) acceptCommit(id, reason string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.incoming[id]
	if !ok {
		return fmt.Errorf("commit incoming migration %q on %s: %w", id, h.spec.Name, ErrNoReservation)
	}
	delete(h.incoming, id)
	if reason == "" {
		reason = migrate.ReasonMigrated
	}
	h.vms[r.spec.Name] = &vm{spec: r.spec, state: fsm.VMRunning, reason: reason}
	return nil
}

// acceptMark gives the arrived copy of a VM in post-copy its new reason:
// "post-copy failed" when the stream broke, "post-copy" when it resumed,
// "migrated" once every page arrived.
func (h *Host) acceptMark(name, reason string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vms[name]
	if !ok {
		return fmt.Errorf("mark vm %q on %s: %w", name, h.spec.Name, migrate.ErrNoDomain)
	}
	v.reason = reason
	return nil
}

// acceptRelease drops a reservation after the source gave up. Releasing an
// unknown id is not an error: the source may retry a release that arrived.
func (h *Host) acceptRelease(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.incoming, id)
	return nil
}

// reservedBy names the source host of a reservation.
func (h *Host) reservedBy(id string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.incoming[id]
	return r.source, ok
}

// Incoming counts the migrations this host has reserved memory for.
func (h *Host) Incoming() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.incoming)
}

// DropIncomingFrom releases every reservation a source host holds here. A
// source in another process that dies mid-migration never sends release;
// the node calls this when gossip declares that source gone.
func (h *Host) DropIncomingFrom(source string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for id, r := range h.incoming {
		if r.source == source {
			delete(h.incoming, id)
			n++
		}
	}
	return n
}
