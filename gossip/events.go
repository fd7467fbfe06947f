package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// eventHandler receives memberlist's membership callbacks. They run while
// memberlist holds its node lock: they only touch the member table and
// start background sends, never call back into memberlist.
type eventHandler struct{ a *Agent }

func (h *eventHandler) NotifyJoin(n *memberlist.Node)   { h.a.nodeAlive(n) }
func (h *eventHandler) NotifyUpdate(n *memberlist.Node) { h.a.nodeAlive(n) }
func (h *eventHandler) NotifyLeave(n *memberlist.Node)  { h.a.nodeGone(n) }

// nodeAlive records a host memberlist reports alive, with its address and
// advertised facts version. EventJoin waits for the facts; a missing big
// record is pulled at once.
func (a *Agent) nodeAlive(n *memberlist.Node) {
	now := time.Now()
	a.mu.Lock()
	e := a.entryLocked(n.Name)
	wasAlive := e.seen && e.status == StatusAlive
	ip := n.Addr.String()
	moved := e.seen && (e.ip != ip || e.port != n.Port)
	e.seen, e.ip, e.port, e.status = true, ip, n.Port, StatusAlive
	if !wasAlive {
		a.alive.Add(1)
		e.announced = false
	}
	if n.Name != a.name {
		if md, ok := decodeMeta(n.Meta); ok {
			e.adv = md
			e.boot = md.Boot
			if e.have && e.rec.Version > md.Version+maxLead {
				// The host advertises a version far below the record held:
				// it does not claim that record. Drop it and pull its own.
				a.reject(&a.disowned, fmt.Errorf("%w: held record of %q at version %d, the host advertises %d: discarded",
					ErrInvalid, n.Name, e.rec.Version, md.Version))
				e.have, e.rec, e.enc, e.canon = false, record{Name: n.Name}, nil, nil
			}
		}
	}
	e.noteProgress(now)
	switch {
	case e.have && !e.announced:
		e.announced = true
		a.emitLocked(EventJoin, e)
	case e.announced && moved:
		a.emitLocked(EventUpdate, e)
	}
	// Only big records are pulled from here; small ones are left to gossip
	// and, failing that, to the repair loop.
	w, ok := a.pullDueLocked(e, now, true)
	a.mu.Unlock()
	if ok {
		a.sendWant(w)
	}
}

// nodeGone records a host memberlist declared dead or that left. memberlist
// uses one callback for both and never fills in Node.State, so the host's
// own leave notice (see meta) tells them apart.
func (a *Agent) nodeGone(n *memberlist.Node) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entryLocked(n.Name)
	if e.seen && e.status == StatusAlive {
		a.alive.Add(-1)
	}
	e.seen = true
	e.announced = false
	e.behindSince = time.Time{}
	e.gone = time.Now()
	if e.isLeaving() {
		e.status = StatusLeft
		a.emitLocked(EventLeft, e)
		return
	}
	e.status = StatusDead
	a.emitLocked(EventFailed, e)
}
