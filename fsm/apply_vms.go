package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// applySyncVMs replaces one host's inventory with its hypervisor's report.
// Hypervisors are the truth about which guests run where, with rules that
// keep every VM on exactly one host in the state:
//   - a VM held by a migration belongs to its source until Finish moves it,
//     whatever either side reports meanwhile (both list it around switch-over);
//   - a VM recorded on another host that is still alive keeps that record;
//     the report wins only when the recorded host is Down or Left. Under
//     log version 2, a live host's claim on such a VM (running or paused
//     there) raises a split-brain alarm: the same UUID runs twice;
//   - under log version 2, a report read before the VM's last move (its
//     Index is below the VM's MovedIndex) is out of date about that VM: it
//     neither claims it nor drops it.
func applySyncVMs(s *State, data []byte) (any, error) {
	var c SyncVMs
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if _, ok := s.Hosts[c.Host]; !ok {
		return nil, rejectf("sync VMs of host %q: no such host", c.Host)
	}
	seen := map[string]bool{}
	active := map[string]bool{} // running or paused: a copy that runs
	names := map[string]bool{}
	for i := range c.VMs {
		v := c.VMs[i]
		if v.Name == "" {
			return nil, rejectf("sync VMs of host %q: VM %d has no name", c.Host, i)
		}
		if names[v.Name] {
			return nil, rejectf("sync VMs of host %q: VM %q listed twice", c.Host, v.Name)
		}
		if seen[v.Key()] {
			return nil, rejectf("sync VMs of host %q: UUID %s listed twice", c.Host, v.UUID)
		}
		names[v.Name], seen[v.Key()] = true, true
		active[v.Key()] = activeState(v.State)
	}
	v2 := s.v2()
	s.tick(c.At)
	// The host's VMs come from the index of VMs by host (hostindex.go):
	// every replica applies every host's report, and scanning every VM of
	// the mesh for them (10,000 at 200 hosts of 50, three times a report
	// before ctl200 made it once) was the largest hostmesh cost in the
	// profiles of a mesh whose hosts joined. What is on the host
	// afterwards is those plus the reported VMs the report places there.
	before := map[string]string{} // key → name of the VMs on the host
	for _, k := range s.vmKeysOn(c.Host) {
		before[k] = s.VMs[k].Name
	}
	on := make(map[string]bool, len(before)+len(c.VMs)) // may be on the host after the report
	for k := range before {
		on[k] = true
	}
	for i := range c.VMs {
		v := c.VMs[i]
		v.Host, v.Migration, v.MovedIndex = c.Host, "", 0
		k := v.Key()
		e := s.VMs[k]
		if e != nil {
			v.Migration, v.MovedIndex = e.Migration, e.MovedIndex
		}
		if e != nil && e.Host != c.Host {
			if e.Migration != "" || (v2 && c.Index < e.MovedIndex) {
				continue
			}
			if h := s.Hosts[e.Host]; h != nil && h.State != HostDown && h.State != HostLeft {
				if v2 && active[k] && activeState(e.State) {
					s.claim(k, e, c.Host, c)
				}
				continue
			}
			// The recorded host is gone: the report wins, the VM moved.
			if v2 {
				v.MovedIndex = s.index
			}
		}
		s.putVM(k, &v)
		on[k] = true
	}
	var after []string // the host's VMs once the unlisted are dropped
	for k := range on {
		vm := s.VMs[k]
		if vm == nil || vm.Host != c.Host {
			continue
		}
		if !seen[k] && vm.Migration == "" && !(v2 && c.Index < vm.MovedIndex) {
			s.dropVM(k)
			// Undefined on its host: its settings go with it.
			delete(s.VMSettings, k)
			continue
		}
		after = append(after, k)
	}
	if v2 {
		s.sortVMKeys(after) // VMsOn's order, as the event lists them
		s.inventoryEvent(c, before, after)
		s.settleSplitBrains(c.Host, active, c)
	}
	return nil, nil
}

// inventoryEvent records the VMs a host's report added to it and took
// from it (a VM's state changing is not an event); after is the keys of the
// host's VMs after the report, in VMsOn's order.
func (s *State) inventoryEvent(c SyncVMs, before map[string]string, after []string) {
	var added, gone []string
	var addedKey string
	for _, k := range after {
		if _, ok := before[k]; !ok {
			added = append(added, s.VMs[k].Name)
			addedKey = k
		}
	}
	for k, name := range before {
		if vm := s.VMs[k]; vm == nil || vm.Host != c.Host {
			gone = append(gone, name)
		}
	}
	if len(added)+len(gone) == 0 {
		return
	}
	slices.Sort(gone)
	var parts []string
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("%d new (%s)", len(added), names(added)))
	}
	if len(gone) > 0 {
		parts = append(parts, fmt.Sprintf("%d gone (%s)", len(gone), names(gone)))
	}
	e := Event{Time: c.At, Actor: "host " + c.Host, Kind: EventHostInventory, Hosts: []string{c.Host},
		Message: fmt.Sprintf("%s reports %s", c.Host, strings.Join(parts, ", "))}
	switch {
	case len(added) == 1 && len(gone) == 0:
		e.VM, e.VMUUID = added[0], s.VMs[addedKey].UUID
	case len(gone) == 1 && len(added) == 0:
		e.VM = gone[0]
	}
	s.emit(e)
}

// names lists names, the first ten of them.
func names(l []string) string {
	if len(l) > 10 {
		return strings.Join(l[:10], ", ") + fmt.Sprintf(" and %d more", len(l)-10)
	}
	return strings.Join(l, ", ")
}

// activeState reports whether a VM in state st runs (a paused guest
// holds its memory and resumes where it is).
func activeState(st string) bool { return st == VMRunning || st == VMPaused }

// claim records that host reports the VM e (key k) that the state places
// on another live host: a split brain.
func (s *State) claim(k string, e *VM, host string, c SyncVMs) {
	key := AlarmKey(AlarmSplitBrain, k)
	a := s.Alarms[key]
	raised := a == nil
	if raised {
		a = &Alarm{Kind: AlarmSplitBrain, VMUUID: k, VM: e.Name, Hosts: []string{e.Host}, Since: c.At, Index: s.index}
		s.Alarms[key] = a
	}
	if slices.Contains(a.Hosts, host) {
		return
	}
	a.Hosts = append(a.Hosts, host)
	slices.Sort(a.Hosts)
	a.Message = splitBrainMessage(a, e.Host)
	s.emit(Event{Time: c.At, Actor: "host " + host, Kind: EventAlarmRaised, Hosts: slices.Clone(a.Hosts), VM: a.VM, VMUUID: k,
		Message: "split brain: " + a.Message})
}

// clearAlarm drops an alarm and records why.
func (s *State) clearAlarm(key, why string, at time.Time, actor string) {
	a := s.Alarms[key]
	delete(s.Alarms, key)
	s.emit(Event{Time: at, Actor: actor, Kind: EventAlarmCleared, Hosts: slices.Clone(a.Hosts), VM: a.VM, VMUUID: a.VMUUID,
		Message: fmt.Sprintf("%s of vm %s cleared: %s", a.Kind, a.VM, why)})
}

// alarmKeys returns the alarms' keys sorted, so that alarms change (and
// their events are recorded) in the same order on every replica.
func (s *State) alarmKeys() []string {
	return slices.Sorted(maps.Keys(s.Alarms))
}

func splitBrainMessage(a *Alarm, recorded string) string {
	return fmt.Sprintf("vm %s (uuid %s) runs on %s at once; the state keeps it on %s, and it is not migrated until only one host runs it",
		a.VM, a.VMUUID, strings.Join(a.Hosts, " and "), recorded)
}

// settleSplitBrains updates the split-brain alarms after host's report:
// host no longer claims a VM it does not run, and an alarm whose VM is
// gone from the state or that only one host still reports is cleared.
func (s *State) settleSplitBrains(host string, active map[string]bool, c SyncVMs) {
	for _, key := range s.alarmKeys() {
		a := s.Alarms[key]
		if a.Kind != AlarmSplitBrain {
			continue
		}
		vm := s.VMs[a.VMUUID]
		if vm == nil {
			s.clearAlarm(key, "the VM is gone from the state", c.At, "host "+host)
			continue
		}
		if !active[a.VMUUID] && !(c.Index < vm.MovedIndex) {
			a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == host })
		}
		// The recorded host counts while its copy runs.
		if !activeState(vm.State) {
			a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == vm.Host })
		} else if !slices.Contains(a.Hosts, vm.Host) {
			a.Hosts = append(a.Hosts, vm.Host)
			slices.Sort(a.Hosts)
		}
		if len(a.Hosts) <= 1 {
			why := "no host runs it now"
			if len(a.Hosts) == 1 {
				why = "only " + a.Hosts[0] + " runs it now"
			}
			s.clearAlarm(key, why, c.At, "host "+host)
			continue
		}
		a.Message = splitBrainMessage(a, vm.Host)
	}
}

// dropHostFromAlarms forgets a removed host's claims.
func (s *State) dropHostFromAlarms(host string, at time.Time) {
	for _, key := range s.alarmKeys() {
		a := s.Alarms[key]
		a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == host })
		if len(a.Hosts) <= 1 {
			s.clearAlarm(key, host+" was removed from the mesh", at, s.leaderActor())
		}
	}
}

// SplitBrain returns the split-brain alarm standing for the VM with key
// k, or nil.
func (s *State) SplitBrain(k string) *Alarm {
	return s.Alarms[AlarmKey(AlarmSplitBrain, k)]
}
