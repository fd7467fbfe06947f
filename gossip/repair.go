package gossip

import (
	"time"
)

// repairLoop republishes metadata after the own facts changed and pulls
// records that peers advertise but that never arrived: big records at once,
// small ones after a grace period in which gossip should have delivered them.
func (a *Agent) repairLoop() {
	tick := time.NewTicker(a.t.repair)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-a.kick:
			a.republishMeta()
		case <-tick.C:
			a.republishMeta()
			a.pullMissing()
			a.prune(time.Now())
		}
	}
}

// prune removes the entries of hosts that vanished: dead or left for longer
// than the reap time, or known only from a record memberlist never backed
// with a live member for longer than the unseen time. A pruned host that
// comes back is a new entry, as for memberlist.
func (a *Agent) prune(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, e := range a.members {
		if name == a.name {
			continue
		}
		dead := e.seen && (e.status == StatusDead || e.status == StatusLeft)
		if dead && e.gone.IsZero() {
			e.gone = now
		}
		gone := dead && now.Sub(e.gone) > a.t.reap
		unseen := !e.seen && now.Sub(e.created) > a.t.unseen
		if gone || unseen {
			delete(a.members, name)
			a.pruned.Add(1)
		}
	}
}

// republishMeta re-advertises this host's metadata when its facts version
// moved past what memberlist last sent. UpdateNode would wait for the
// broadcast to finish all its retransmissions, holding up the next update;
// the wait is cut to a token one and its timeout ignored, because the
// broadcast is queued either way and push/pull backs it up.
func (a *Agent) republishMeta() {
	a.mu.Lock()
	stale := a.metaPublished < a.members[a.name].rec.Version || !a.bootPublished
	a.mu.Unlock()
	if !stale {
		return
	}
	_ = a.ml.Load().UpdateNode(time.Millisecond)
}

// pullMissing asks every lagging host for its record. Small records are
// not pulled while this agent still has records to gossip: then gossip is
// flowing (a host joining a large mesh, a burst of updates) and pulls would
// only add TCP connections to a busy mesh, which on a loaded machine
// delayed probes enough to declare healthy hosts dead.
func (a *Agent) pullMissing() {
	now := time.Now()
	busy := a.queue.NumQueued() > 0
	var wants []pull
	a.mu.Lock()
	for _, e := range a.members {
		if e.name == a.name {
			continue
		}
		e.noteProgress(now)
		if w, ok := a.pullDueLocked(e, now, busy); ok {
			wants = append(wants, w)
		}
	}
	a.mu.Unlock()
	for _, w := range wants {
		a.sendWant(w)
	}
}

// pull is a pull request and where to send it.
type pull struct {
	to   string
	ip   string
	port uint16
	req  want
}

// pullDueLocked decides whether to ask e for its record now: it must be
// behind, big or (unless bigOnly) past the grace period, and not recently
// asked for this version.
func (a *Agent) pullDueLocked(e *entry, now time.Time, bigOnly bool) (pull, bool) {
	if e.name == a.name || !e.behind() {
		return pull{}, false
	}
	if !e.adv.Big && (bigOnly || now.Sub(e.behindSince) < a.t.grace) {
		return pull{}, false
	}
	if e.pulledVersion >= e.adv.Version && now.Sub(e.lastPull) < a.t.pullBackoff {
		return pull{}, false
	}
	e.lastPull, e.pulledVersion = now, e.adv.Version
	return pull{to: e.name, ip: e.ip, port: e.port,
		req: want{From: a.name, Addr: a.addr, Name: e.name, Version: e.adv.Version}}, true
}

// sendWant sends a pull request to the host that owns the record.
func (a *Agent) sendWant(p pull) {
	msg, err := encodeWant(p.req)
	if err != nil {
		a.log.Error("cannot pull facts", "host", p.to, "error", err)
		return
	}
	a.pulls.Add(1)
	a.sendReliable(p.to, p.ip, p.port, msg, "pull")
}

// answerWant sends the requested record back to the asker, if held.
func (a *Agent) answerWant(w want) {
	a.mu.Lock()
	e, ok := a.members[w.Name]
	if !ok || !e.have {
		a.mu.Unlock()
		return
	}
	if e.enc == nil {
		enc, err := encodeRecord(kindRecord, e.rec)
		if err != nil {
			a.mu.Unlock()
			a.log.Error("cannot answer pull", "host", w.From, "error", err)
			return
		}
		e.enc = enc
	}
	msg := append([]byte{kindReply}, e.enc[1:]...)
	a.mu.Unlock()
	ip, port, err := splitHostPort(w.Addr)
	if err != nil {
		a.log.Warn("pull request with bad address", "host", w.From, "addr", w.Addr, "error", err)
		return
	}
	a.sendReliable(w.From, ip, port, msg, "pull reply")
}
