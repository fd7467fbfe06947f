package fsm

import (
	"encoding/json"
	"sort"
)

// State is the whole replicated state. Readers get a deep copy from FSM.State,
// so scheduler code can read it without locks and without affecting replicas.
type State struct {
	Hosts      map[string]*Host      `json:"hosts"`
	VMs        map[string]*VM        `json:"vms"`
	Migrations map[string]*Migration `json:"migrations"`
	Clusters   map[string]*Cluster   `json:"clusters"`
	Drains     map[string]*Drain     `json:"drains"`
	// Queue holds the IDs of Queued and Running migrations in arrival order;
	// final ones leave it (they stay in Migrations as history).
	Queue []string `json:"queue"`
	// Seq numbers migrations; IDs are "m" + Seq so every replica names them alike.
	Seq uint64 `json:"seq"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Hosts:      map[string]*Host{},
		VMs:        map[string]*VM{},
		Migrations: map[string]*Migration{},
		Clusters:   map[string]*Cluster{},
		Drains:     map[string]*Drain{},
	}
}

// Clone returns a deep copy. JSON round-trip keeps it obviously complete as the
// types grow; the state is small enough that this is not a hot path.
func (s *State) Clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic("fsm: state does not marshal: " + err.Error())
	}
	c := NewState()
	if err := json.Unmarshal(b, c); err != nil {
		panic("fsm: state does not unmarshal: " + err.Error())
	}
	return c
}

// Cluster returns the settings of the named cluster, or the defaults when the
// cluster was never configured.
func (s *State) Cluster(name string) Cluster {
	if c, ok := s.Clusters[name]; ok {
		return *c
	}
	return DefaultCluster(name)
}

// HostNames returns host names sorted, for deterministic iteration.
func (s *State) HostNames() []string {
	names := make([]string, 0, len(s.Hosts))
	for n := range s.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VMNames returns VM names sorted.
func (s *State) VMNames() []string {
	names := make([]string, 0, len(s.VMs))
	for n := range s.VMs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VMsOn returns the VMs whose current host is host, sorted by name.
func (s *State) VMsOn(host string) []*VM {
	var out []*VM
	for _, n := range s.VMNames() {
		if s.VMs[n].Host == host {
			out = append(out, s.VMs[n])
		}
	}
	return out
}

// Running returns the migrations that hold slots (state Running), in queue order.
func (s *State) Running() []*Migration {
	var out []*Migration
	for _, id := range s.Queue {
		if m := s.Migrations[id]; m != nil && m.State == MigRunning {
			out = append(out, m)
		}
	}
	return out
}

// Queued returns the migrations waiting for slots, in queue order.
func (s *State) Queued() []*Migration {
	var out []*Migration
	for _, id := range s.Queue {
		if m := s.Migrations[id]; m != nil && m.State == MigQueued {
			out = append(out, m)
		}
	}
	return out
}

// SlotUse counts running migrations per source host, per destination host and
// per cluster: what the slot limits bound.
type SlotUse struct {
	Out     map[string]int
	In      map[string]int
	Cluster map[string]int
}

// Slots counts the slots held by running migrations.
func (s *State) Slots() SlotUse {
	u := SlotUse{Out: map[string]int{}, In: map[string]int{}, Cluster: map[string]int{}}
	for _, m := range s.Running() {
		u.Out[m.Source]++
		u.In[m.Dest]++
		u.Cluster[m.Cluster]++
	}
	return u
}

// IncomingMemMiB sums the memory of VMs being migrated to host, which the
// host's gossiped free memory does not yet reflect.
func (s *State) IncomingMemMiB(host string) uint64 {
	var sum uint64
	for _, id := range s.Queue {
		m := s.Migrations[id]
		if m == nil || m.Dest != host || m.State.Final() {
			continue
		}
		if vm := s.VMs[m.VM]; vm != nil {
			sum += vm.MemoryMiB
		}
	}
	return sum
}
