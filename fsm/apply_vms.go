package fsm

import (
	"fmt"
	"slices"
	"strings"
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
		s.VMs[k] = &v
	}
	for _, k := range s.vmKeysOn(c.Host) {
		vm := s.VMs[k]
		if !seen[k] && vm.Migration == "" && !(v2 && c.Index < vm.MovedIndex) {
			delete(s.VMs, k)
		}
	}
	if v2 {
		s.settleSplitBrains(c.Host, active, c)
	}
	return nil, nil
}

// activeState reports whether a VM in state st runs (a paused guest
// holds its memory and resumes where it is).
func activeState(st string) bool { return st == VMRunning || st == VMPaused }

// claim records that host reports the VM e (key k) that the state places
// on another live host: a split brain.
func (s *State) claim(k string, e *VM, host string, c SyncVMs) {
	key := AlarmKey(AlarmSplitBrain, k)
	a := s.Alarms[key]
	if a == nil {
		a = &Alarm{Kind: AlarmSplitBrain, VMUUID: k, VM: e.Name, Hosts: []string{e.Host}, Since: c.At, Index: s.index}
		s.Alarms[key] = a
	}
	if !slices.Contains(a.Hosts, host) {
		a.Hosts = append(a.Hosts, host)
		slices.Sort(a.Hosts)
	}
	a.Message = splitBrainMessage(a, e.Host)
}

func splitBrainMessage(a *Alarm, recorded string) string {
	return fmt.Sprintf("vm %s (uuid %s) runs on %s at once; the state keeps it on %s, and it is not migrated until only one host runs it",
		a.VM, a.VMUUID, strings.Join(a.Hosts, " and "), recorded)
}

// settleSplitBrains updates the split-brain alarms after host's report:
// host no longer claims a VM it does not run, and an alarm whose VM is
// gone from the state or that only one host still reports is cleared.
func (s *State) settleSplitBrains(host string, active map[string]bool, c SyncVMs) {
	for key, a := range s.Alarms {
		if a.Kind != AlarmSplitBrain {
			continue
		}
		vm := s.VMs[a.VMUUID]
		if vm == nil {
			delete(s.Alarms, key)
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
			delete(s.Alarms, key)
			continue
		}
		a.Message = splitBrainMessage(a, vm.Host)
	}
}

// dropHostFromAlarms forgets a removed host's claims.
func (s *State) dropHostFromAlarms(host string) {
	for key, a := range s.Alarms {
		a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == host })
		if len(a.Hosts) <= 1 {
			delete(s.Alarms, key)
		}
	}
}

// SplitBrain returns the split-brain alarm standing for the VM with key
// k, or nil.
func (s *State) SplitBrain(k string) *Alarm {
	return s.Alarms[AlarmKey(AlarmSplitBrain, k)]
}
