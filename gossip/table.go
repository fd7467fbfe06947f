package gossip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// entry is what the agent knows about one host: memberlist's view (address,
// liveness) and the facts record, which arrive independently.
type entry struct {
	name string
	// seen is set once memberlist reported the host; records can arrive
	// first (through push/pull) and are kept without listing the host.
	seen   bool
	ip     string
	port   uint16
	status Status
	// announced is set once EventJoin was emitted for the current life of
	// the host, so later changes are EventUpdate.
	announced bool

	have bool
	rec  record
	// enc is rec encoded as a kindRecord message, nil until needed.
	enc []byte

	// boot is what the host advertises about its Raft membership.
	boot Boot

	// canon is rec's canonical form (see wins), computed when a tie needs it.
	canon []byte
	// created is when a record of a host memberlist had not reported came
	// in; gone is when memberlist reported the host dead or left. Both
	// bound how long the entry stays (see prune).
	created, gone time.Time

	// adv is the version the host advertises in its metadata; when it is
	// ahead of rec the record is missing and may be pulled.
	adv         meta
	behindSince time.Time
	// lastPull and pulledVersion space out repeated pulls of one version.
	lastPull      time.Time
	pulledVersion uint64
}

func (e *entry) addr() string {
	if e.ip == "" {
		return ""
	}
	return net.JoinHostPort(e.ip, strconv.Itoa(int(e.port)))
}

func (e *entry) member() Member {
	m := Member{Name: e.name, Addr: e.addr(), Status: e.status, Boot: e.boot}
	if e.have {
		m.Facts = cloneFacts(e.rec.Facts)
		m.Version = e.rec.Version
	}
	return m
}

// behind reports whether the host advertises facts newer than those held.
func (e *entry) behind() bool {
	return e.seen && e.status == StatusAlive && e.adv.Version > e.rec.Version
}

// isLeaving reports whether the host announced it is leaving, trusting
// whichever of metadata and record is fresher.
func (e *entry) isLeaving() bool {
	if e.adv.Version > e.rec.Version {
		return e.adv.Leaving
	}
	return e.rec.Leaving || (e.adv.Version == e.rec.Version && e.adv.Leaving)
}

// noteProgress keeps behindSince in step with behind(): set when a gap
// opens, cleared when it closes.
func (e *entry) noteProgress(now time.Time) {
	switch {
	case !e.behind():
		e.behindSince = time.Time{}
	case e.behindSince.IsZero():
		e.behindSince = now
	}
}

// entryLocked returns the entry for name, creating it.
func (a *Agent) entryLocked(name string) *entry {
	e, ok := a.members[name]
	if !ok {
		e = &entry{name: name}
		a.members[name] = e
	}
	return e
}

// encodeSelfLocked re-encodes the own record after a change of facts or
// version and notes whether it is small enough for UDP gossip.
func (a *Agent) encodeSelfLocked() error {
	msg, err := encodeRecord(kindRecord, a.members[a.name].rec)
	if err != nil {
		return err
	}
	a.selfMsg = msg
	a.selfBig = len(msg) > maxGossipRecord
	a.members[a.name].enc = msg
	return nil
}

// emitLocked queues an event without ever blocking memberlist.
func (a *Agent) emitLocked(t EventType, e *entry) {
	if a.closed {
		return
	}
	select {
	case a.events <- Event{Type: t, Member: e.member()}:
	default:
		a.dropped.Add(1)
		a.log.Warn("events channel full, event dropped", "type", t.String(), "host", e.name)
	}
}

// mergeRecord keeps r if it wins over what is held (see wins); raw, if not
// nil, is r encoded as a kindRecord message. Records learnt from gossip are
// re-gossiped so they spread epidemically; records from push/pull or pulls
// are not (push/pull would otherwise flood the queue on every join). An
// invalid record, one its owner does not claim (see maxLead) or one over the
// table's bound is dropped and counted, never stored.
func (a *Agent) mergeRecord(r record, raw []byte, regossip bool) {
	r.Facts.Name = r.Name
	if err := validateRecord(r); err != nil {
		a.reject(&a.rejected, err)
		return
	}
	if r.Name == a.name {
		a.refute(r)
		return
	}
	a.mu.Lock()
	e, ok := a.members[r.Name]
	if !ok && len(a.members) >= maxEntries {
		a.mu.Unlock()
		a.reject(&a.rejected, fmt.Errorf("%w: record of %q: the table holds %d hosts already", ErrInvalid, r.Name, maxEntries))
		return
	}
	if ok && e.adv.Version > 0 && r.Version > e.adv.Version+maxLead {
		adv := e.adv.Version
		a.mu.Unlock()
		a.reject(&a.disowned, fmt.Errorf("%w: record of %q at version %d: the host itself advertises %d",
			ErrInvalid, r.Name, r.Version, adv))
		return
	}
	if !ok {
		e = a.entryLocked(r.Name)
		e.created = time.Now()
	}
	var canon []byte
	if e.have {
		var win bool
		if win, canon = wins(r, e); !win {
			a.mu.Unlock()
			return
		}
	}
	e.rec = r
	e.enc = raw
	e.canon = canon
	e.have = true
	e.noteProgress(time.Now())
	if e.status == StatusDead && r.Leaving {
		// The leave notice was missed and the departure taken for a failure.
		e.status = StatusLeft
		a.emitLocked(EventLeft, e)
	}
	if e.seen && e.status == StatusAlive {
		if e.announced {
			a.emitLocked(EventUpdate, e)
		} else {
			e.announced = true
			a.emitLocked(EventJoin, e)
		}
	}
	a.mu.Unlock()
	if regossip && raw != nil && len(raw) <= maxGossipRecord {
		a.queue.QueueBroadcast(&factsBroadcast{host: r.Name, msg: raw})
	}
}

// wins reports whether r replaces the held record of e: a higher version
// wins; at equal versions, the greater canonical form (facts as JSON, then
// the leaving flag) wins, so that every host ends with the same record
// whatever order copies arrived in (merge is commutative, associative and
// idempotent). Honest hosts never publish two records at one version
// except across a restart, which the owner refutes anyway. It also returns
// r's canonical form when it computed it.
func wins(r record, e *entry) (bool, []byte) {
	switch {
	case r.Version > e.rec.Version:
		return true, nil
	case r.Version < e.rec.Version:
		return false, nil
	}
	if e.canon == nil {
		e.canon = canonical(e.rec)
	}
	c := canonical(r)
	return bytes.Compare(c, e.canon) > 0, c
}

// canonical is the form records of one version are ordered by.
func canonical(r record) []byte {
	b, _ := json.Marshal(r.Facts) // facts always marshal
	if r.Leaving {
		return append(b, 1)
	}
	return append(b, 0)
}

// isNews reports whether a record with this header could change anything:
// a newer version of a peer (or the same version with other facts, for the
// tie-break), or a version of this host at least as high as its own (a
// candidate for refute). The many identical copies epidemic gossip delivers
// are told by their deflated bytes, without inflating them.
func (a *Agent) isNews(h recordHeader) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.members[h.Name]
	if !ok || !e.have {
		return true
	}
	if h.Name == a.name {
		return h.Version >= e.rec.Version
	}
	if h.Version != e.rec.Version {
		return h.Version > e.rec.Version
	}
	if e.enc == nil {
		enc, err := encodeRecord(kindRecord, e.rec)
		if err != nil {
			return true
		}
		e.enc = enc
	}
	held, err := peekRecord(e.enc[1:])
	return err != nil || held.Leaving != h.Leaving || !bytes.Equal(held.body, h.body)
}

// refute handles a record about this host coming back from the mesh. A
// version at or above ours with other facts is a previous life of this host
// (it restarted and counted from 1 again): jump past it and republish, so
// peers replace the stale facts.
//
// A record of this host far ahead of its own version (beyond maxLead) is not
// refuted: this host never published it, and jumping past it would hand a
// forger the counter (up to MaxVersion, where no refute is possible any
// more). Peers drop such a record anyway once they see this host advertise
// its real version.
func (a *Agent) refute(r record) {
	a.mu.Lock()
	self := a.members[a.name]
	if r.Version < self.rec.Version || (r.Version == self.rec.Version && sameFacts(r.Facts, self.rec.Facts)) {
		a.mu.Unlock()
		return
	}
	if r.Version > self.rec.Version+maxLead || r.Version >= MaxVersion {
		own := self.rec.Version
		a.mu.Unlock()
		a.reject(&a.disowned, fmt.Errorf("%w: a record of this host at version %d, far ahead of its own %d: not refuted",
			ErrInvalid, r.Version, own))
		return
	}
	self.rec.Version = r.Version + 1
	err := a.encodeSelfLocked()
	msg, big := a.selfMsg, a.selfBig
	a.mu.Unlock()
	if err != nil {
		a.log.Error("cannot gossip facts", "error", err)
		return
	}
	a.log.Info("stale facts of this host seen, republishing", "stale_version", r.Version, "version", r.Version+1)
	if !big {
		a.queue.QueueBroadcast(&factsBroadcast{host: a.name, msg: msg})
	}
	a.kickMeta()
}

// sameFacts compares facts by their wire form, so that nil and empty lists
// (which JSON cannot tell apart) count as equal.
func sameFacts(x, y fsm.HostFacts) bool {
	bx, err1 := json.Marshal(x)
	by, err2 := json.Marshal(y)
	return err1 == nil && err2 == nil && string(bx) == string(by)
}

// cloneFacts copies the slices so callers cannot alias the table.
func cloneFacts(f fsm.HostFacts) fsm.HostFacts {
	f.CPUFlags = append([]string(nil), f.CPUFlags...)
	f.Networks = append([]fsm.Network(nil), f.Networks...)
	f.StorageDomains = append([]string(nil), f.StorageDomains...)
	return f
}
