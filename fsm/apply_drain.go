package fsm

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

func applyStartDrain(s *State, data []byte) (any, error) {
	var c StartDrain
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	h, ok := s.Hosts[c.Host]
	if !ok {
		return nil, rejectf("drain host %q: no such host", c.Host)
	}
	switch h.State {
	case HostUp, HostNonOperational:
	case HostPreparingForMaintenance:
		if d := s.Drains[c.Host]; d != nil && d.State == DrainActive {
			return nil, rejectf("drain host %q: a drain is already running", c.Host)
		}
	default:
		return nil, rejectf("drain host %q: it is %s", c.Host, h.State)
	}
	reason := c.Reason
	if reason == "" {
		reason = "operator"
	}
	s.tick(c.At)
	s.moveHost(h, HostPreparingForMaintenance, "drain ("+reason+")")
	d := &Drain{Host: c.Host, State: DrainActive, Reason: reason, CreatedAt: c.At, RequestedBy: c.Actor,
		Unmovable: map[string]string{}, Moved: map[string]string{}, PredictedSeconds: c.PredictedSeconds}
	s.Drains[c.Host] = d
	keys := s.vmKeysOn(c.Host)
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventDrainStarted, Hosts: []string{c.Host}, Drain: c.Host,
		Message: fmt.Sprintf("drain of %s (%s) started: %d VMs on it", c.Host, reason, len(keys))})
	var ids []string
	for _, k := range keys {
		vm := s.VMs[k]
		switch {
		case vm.State != VMRunning:
			d.Unmovable[vm.Name] = "not running (" + vm.State + "): only running VMs move live"
		case vm.Migration != "":
			// Already moving (e.g. an operator's migrate): that one counts.
		case s.NotMigratable(k) != "":
			// Reported now, not after every host refused it.
			d.Unmovable[vm.Name] = "migratable: " + s.NotMigratable(k)
		default:
			id, err := s.enqueueVM(k, vm, Enqueue{VM: k, Policy: c.Policy, Drain: c.Host, At: c.At, Actor: c.Actor})
			if err != nil {
				d.Unmovable[vm.Name] = err.Error()
				continue
			}
			ids = append(ids, id)
		}
	}
	s.unmovableEvents(d, c.At, c.Actor)
	s.settleDrain(c.Host, c.At, c.Actor)
	return ids, nil
}

// unmovableEvents records each VM a drain reports unmovable, by name.
func (s *State) unmovableEvents(d *Drain, at time.Time, actor string) {
	for _, name := range slices.Sorted(maps.Keys(d.Unmovable)) {
		s.emit(Event{Time: at, Actor: actor, Kind: EventDrainUnmovable, Hosts: []string{d.Host}, VM: name, Drain: d.Host,
			Message: fmt.Sprintf("drain of %s: vm %s cannot move: %s", d.Host, name, d.Unmovable[name])})
	}
}

func applyEndDrain(s *State, data []byte) (any, error) {
	var c EndDrain
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	h, ok := s.Hosts[c.Host]
	d := s.Drains[c.Host]
	if !ok || d == nil {
		return nil, rejectf("end drain of host %q: no drain", c.Host)
	}
	switch c.State {
	case DrainCancelled:
		if d.State != DrainActive && d.State != DrainStuck {
			return nil, rejectf("cancel drain of host %q: drain is %s", c.Host, d.State)
		}
		s.tick(c.At)
		s.cancelDrainQueue(c.Host, c.At, c.Actor)
		d.State, d.EndedAt = DrainCancelled, c.At
		s.moveHost(h, HostUp, "")
		s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventDrainCancelled, Hosts: []string{c.Host}, Drain: c.Host,
			Message: fmt.Sprintf("drain of %s cancelled: %d VMs moved; %s is Up", c.Host, len(d.Moved), c.Host)})
	case DrainStuck:
		// A leave whose time ran out: stop queueing, report what is left.
		if d.State != DrainActive {
			return nil, rejectf("end drain of host %q: drain is %s", c.Host, d.State)
		}
		s.tick(c.At)
		s.cancelDrainQueue(c.Host, c.At, c.Actor)
		late := &Drain{Host: c.Host, Unmovable: map[string]string{}}
		for _, vm := range s.VMsOn(c.Host) {
			if _, ok := d.Unmovable[vm.Name]; !ok {
				d.Unmovable[vm.Name] = "drain time limit reached before it could move"
				late.Unmovable[vm.Name] = d.Unmovable[vm.Name]
			}
		}
		s.unmovableEvents(late, c.At, c.Actor)
		d.State, d.EndedAt = DrainStuck, c.At
		s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventDrainStuck, Hosts: []string{c.Host}, Drain: c.Host,
			Message: fmt.Sprintf("drain of %s ended by its time limit: %d VMs moved, %d could not", c.Host, len(d.Moved), len(d.Unmovable))})
	default:
		return nil, rejectf("end drain of host %q: state %q must be %q or %q", c.Host, c.State, DrainCancelled, DrainStuck)
	}
	return nil, nil
}

// settleDrain closes a drain once none of its migrations is pending: done (the
// host goes to Maintenance) when the host is empty, stuck when VMs remain that
// could not move. Stuck keeps the host PreparingForMaintenance until the
// operator decides: oVirt's hosts stuck "Preparing for maintenance" forever
// are the pain this avoids, by ending the drain with a report instead.
func (s *State) settleDrain(host string, at time.Time, actor string) {
	d := s.Drains[host]
	h := s.Hosts[host]
	if d == nil || h == nil || d.State != DrainActive {
		return
	}
	for _, id := range s.Queue {
		if m := s.Migrations[id]; m != nil && m.Source == host && !m.State.Final() {
			return
		}
	}
	remaining := s.VMsOn(host)
	if len(remaining) == 0 {
		d.State, d.EndedAt = DrainDone, at
		s.moveHost(h, HostMaintenance, "drained ("+d.Reason+")")
		msg := fmt.Sprintf("drain of %s done: %d VMs moved; %s is in Maintenance", host, len(d.Moved), host)
		if d.PredictedSeconds > 0 {
			took := at.Sub(d.CreatedAt).Seconds()
			d.ErrorPercent = math.Round(1000*(took/d.PredictedSeconds-1)) / 10
			msg += fmt.Sprintf("; took %.1fs, predicted %.1fs (error %+.1f%%)", took, d.PredictedSeconds, d.ErrorPercent)
		}
		s.emit(Event{Time: at, Actor: actor, Kind: EventDrainDone, Hosts: []string{host}, Drain: host, Message: msg})
		return
	}
	for _, vm := range remaining {
		if _, ok := d.Unmovable[vm.Name]; !ok {
			return // a VM not yet queued (new in inventory): the leader queues it
		}
	}
	d.State, d.EndedAt = DrainStuck, at
	s.emit(Event{Time: at, Actor: actor, Kind: EventDrainStuck, Hosts: []string{host}, Drain: host,
		Message: fmt.Sprintf("drain of %s stuck: %d VMs moved, %d cannot move; %s stays PreparingForMaintenance",
			host, len(d.Moved), len(d.Unmovable), host)})
}

// dequeue removes a final migration from the queue.
func (s *State) dequeue(id string) {
	s.Queue = slices.DeleteFunc(s.Queue, func(q string) bool { return q == id })
}

// cancelQueued ends a migration that holds no slots.
func (s *State) cancelQueued(m *Migration, at time.Time, actor string) {
	m.State, m.EndedAt, m.Reason = MigCancelled, at, "cancelled before it started"
	s.dequeue(m.ID)
	defer s.finished(m.ID)
	if vm := s.VMOf(m); vm != nil && vm.Migration == m.ID {
		vm.Migration = ""
	}
	s.emit(migrationEvent(m, EventMigrationCancel, actor, at, "%s: vm %s cancelled before it started; it stays on %s",
		m.ID, m.VM, m.Source))
}

// cancelDrainQueue cancels the drain's migrations still waiting for slots;
// running ones finish, since aborting them would waste the copy done so far.
func (s *State) cancelDrainQueue(host string, at time.Time, actor string) {
	for _, m := range s.Queued() {
		if m.Drain == host {
			s.cancelQueued(m, at, actor)
		}
	}
}
