package fsm

import (
	"iter"
	"maps"
)

// The FSM's live state indexes its VMs by host (State.byHost), so the
// passes that want one host's VMs (VMsOn, a host's inventory report in
// applySyncVMs, a drain's start) touch that host's 50 VMs, not the mesh's
// 10,000. Every replica applies every host's inventory report, and at 171
// hosts the scans of every VM of the mesh were about 12 % of the
// machine's CPU in a profile of a mesh whose hosts joined (VMsOn 3.8 %,
// applySyncVMs 4.4 %, cpuFacts 3.5 %; bench/RESULTS.md, "Control plane
// at 200 meshd").
//
// Beside each host's VM keys, the index counts the host's VMs per guest
// CPU definition (byHostCPU), so a host's cpuFacts, which compares every
// distinct guest CPU of its cluster with its own every inventory pass,
// reads each host's few definitions instead of hashing every VM's.
//
// The index is derived, never replicated: it is not encoded (unexported),
// Restore and New build it from VMs, and the FSM's mutation paths (putVM,
// dropVM, MoveVM) keep it. A state without one (NewState, a decoded
// state, a test's fixture) scans, as before: code outside the FSM that
// builds or edits a state by hand stays correct. Clone copies it, so a
// copy edited by hand must move VMs with MoveVM.

// indexVMs builds the index from VMs, replacing any.
func (s *State) indexVMs() {
	s.byHost = make(map[string]map[string]struct{}, len(s.Hosts))
	s.byHostCPU = make(map[string]map[string]int, len(s.Hosts))
	for k, vm := range s.VMs {
		s.indexAdd(vm.Host, k, vm.CPUXML)
	}
}

func (s *State) indexAdd(host, k, cpu string) {
	keys := s.byHost[host]
	if keys == nil {
		keys = map[string]struct{}{}
		s.byHost[host] = keys
	}
	keys[k] = struct{}{}
	if cpu == "" {
		return
	}
	cpus := s.byHostCPU[host]
	if cpus == nil {
		cpus = map[string]int{}
		s.byHostCPU[host] = cpus
	}
	cpus[cpu]++
}

func (s *State) indexDrop(host, k, cpu string) {
	keys := s.byHost[host]
	delete(keys, k)
	if len(keys) == 0 {
		delete(s.byHost, host)
	}
	if cpu == "" {
		return
	}
	cpus := s.byHostCPU[host]
	if cpus[cpu]--; cpus[cpu] <= 0 {
		delete(cpus, cpu)
	}
	if len(cpus) == 0 {
		delete(s.byHostCPU, host)
	}
}

// putVM sets VMs[k] to vm, which may replace a VM on another host.
func (s *State) putVM(k string, vm *VM) {
	if s.byHost != nil {
		if old := s.VMs[k]; old != nil {
			s.indexDrop(old.Host, k, old.CPUXML)
		}
		s.indexAdd(vm.Host, k, vm.CPUXML)
	}
	s.VMs[k] = vm
}

// dropVM deletes VMs[k].
func (s *State) dropVM(k string) {
	if old := s.VMs[k]; old != nil && s.byHost != nil {
		s.indexDrop(old.Host, k, old.CPUXML)
	}
	delete(s.VMs, k)
}

// MoveVM records that the VM with key k now runs on host. Code that plays
// moves forward on a copy of the state (a balancing plan) moves VMs with
// it, so the copy's index follows; the FSM's Apply does the same.
func (s *State) MoveVM(k, host string) {
	vm := s.VMs[k]
	if vm == nil || vm.Host == host {
		return
	}
	if s.byHost != nil {
		s.indexDrop(vm.Host, k, vm.CPUXML)
		s.indexAdd(host, k, vm.CPUXML)
	}
	vm.Host = host
}

// GuestCPUs yields the distinct CPU definitions (CPUXML) of the VMs on
// host, each once, in no particular order.
func (s *State) GuestCPUs(host string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if s.byHost != nil {
			for x := range s.byHostCPU[host] {
				if !yield(x) {
					return
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, vm := range s.VMs {
			if vm.Host != host || vm.CPUXML == "" || seen[vm.CPUXML] {
				continue
			}
			seen[vm.CPUXML] = true
			if !yield(vm.CPUXML) {
				return
			}
		}
	}
}

// cloneIndex copies the index into c for Clone; nil stays nil.
func (s *State) cloneIndex(c *State) {
	if s.byHost == nil {
		return
	}
	c.byHost = make(map[string]map[string]struct{}, len(s.byHost))
	for h, keys := range s.byHost {
		c.byHost[h] = maps.Clone(keys)
	}
	c.byHostCPU = make(map[string]map[string]int, len(s.byHostCPU))
	for h, cpus := range s.byHostCPU {
		c.byHostCPU[h] = maps.Clone(cpus)
	}
}
