package sim

import (
	"context"
	"fmt"
)

// peer is the destination of a migration as its source sees it: a host in
// the same process or one behind Handler in another process. reserve runs
// when the job starts (the destination may refuse), commit at switch-over
// (the VM then runs on the destination), release when the job fails.
type peer interface {
	name() string
	reserve(ctx context.Context, id, source string, spec VMSpec) error
	commit(ctx context.Context, id string) error
	release(ctx context.Context, id string) error
}

// localPeer is a destination host in the same Registry.
type localPeer struct{ h *Host }

func (p localPeer) name() string { return p.h.spec.Name }
func (p localPeer) reserve(_ context.Context, id, source string, spec VMSpec) error {
	return p.h.acceptReserve(id, source, spec)
}
func (p localPeer) commit(_ context.Context, id string) error  { return p.h.acceptCommit(id) }
func (p localPeer) release(_ context.Context, id string) error { return p.h.acceptRelease(id) }

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
func (h *Host) acceptCommit(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.incoming[id]
	if !ok {
		return fmt.Errorf("commit incoming migration %q on %s: %w", id, h.spec.Name, ErrNoReservation)
	}
	delete(h.incoming, id)
	h.vms[r.spec.Name] = &vm{spec: r.spec, state: "running"}
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
