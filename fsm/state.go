package fsm

import (
	"maps"
	"slices"
	"sort"
	"time"
)

// State is the whole replicated state. Readers get a deep copy from FSM.State,
// so scheduler code can read it without locks and without affecting replicas.
type State struct {
	Hosts map[string]*Host `json:"hosts"`
	// VMs are keyed by VMKey: the UUID (see vms.go).
	VMs        map[string]*VM        `json:"vms"`
	Migrations map[string]*Migration `json:"migrations"`
	Clusters   map[string]*Cluster   `json:"clusters"`
	Drains     map[string]*Drain     `json:"drains"`
	// Queue holds the IDs of Queued and Running migrations in arrival order;
	// final ones leave it (they stay in Migrations as history).
	Queue []string `json:"queue"`
	// History holds the IDs of finished migrations in the order they
	// finished, for the retention (retention.go); log version 2 on.
	History []string `json:"history,omitempty"`
	// Seq numbers migrations; IDs are "m" + Seq so every replica names them alike.
	Seq uint64 `json:"seq"`
	// LogVersion is the version of the rules Apply follows (see
	// LogVersion): raised by LeaderElected, never lowered.
	LogVersion int `json:"log_version,omitempty"`
	// VMSettings are the operators' per-VM settings (vmsettings.go),
	// keyed by VM key.
	VMSettings map[string]*VMSettings `json:"vm_settings,omitempty"`
	// Affinity are the affinity rules by name (affinity.go).
	Affinity map[string]*AffinityRule `json:"affinity,omitempty"`
	// Alarms stand until their condition clears, keyed by kind/VM key.
	Alarms map[string]*Alarm `json:"alarms,omitempty"`
	// Leader is the host the last LeaderElected named: the actor of the
	// commands a leader writes on its own (grants, host states).
	Leader string `json:"leader,omitempty"`
	// Time is the latest time a command carried (see tick).
	Time time.Time `json:"time,omitzero"`
	// Events is the bounded event log (events.go). Clone leaves it out.
	Events *EventLog `json:"events,omitempty"`
	// ACL is the table of ACL tokens (acl.go).
	ACL ACL `json:"acl,omitzero"`

	// index is the Raft index of the entry being applied, which handlers
	// record (VM.MovedIndex, alarms); set by Apply, never part of the
	// replicated state.
	index uint64
	// grantCheck is the FSM's GrantCheck, set by Apply.
	grantCheck GrantCheck
	// byHost indexes VMs by host: host → keys of its VMs (hostindex.go).
	// nil in a state the FSM does not own: then passes scan VMs.
	byHost map[string]map[string]struct{}
	// byHostCPU counts each host's VMs per guest CPU definition
	// (hostindex.go); nil with byHost.
	byHostCPU map[string]map[string]int
}

// GrantCheck decides whether the queued migration m may start towards
// dest in state s: nil lets it. Package migrate's prerequisite checks live
// above this package (they import it), so meshd hands them to the FSM
// (FSM.SetGrantCheck). It must be a pure function of its arguments, and
// every replica must run the same one: Apply calls it.
type GrantCheck func(s *State, m *Migration, dest string) error

// v2 reports whether the entry being applied follows the rules of log
// version 2 or later (see LogVersion).
func (s *State) v2() bool { return s.LogVersion >= LogVersionValidated }

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Hosts:      map[string]*Host{},
		VMs:        map[string]*VM{},
		Migrations: map[string]*Migration{},
		Clusters:   map[string]*Cluster{},
		Drains:     map[string]*Drain{},
		Alarms:     map[string]*Alarm{},
		VMSettings: map[string]*VMSettings{},
		Affinity:   map[string]*AffinityRule{},
		Events:     newEventLog(),
	}
}

// Clone returns a deep copy, but for the event log (Events is nil): the
// scheduler and the API never read it. It copies field by field rather than through
// JSON: the leader's scheduler and every migrate request take one, and at
// 5,000 VMs a JSON round-trip cost a third of a second and most of the
// leader's garbage. clone_test.go checks it against the JSON round-trip.
func (s *State) Clone() *State {
	c := &State{
		Hosts:      make(map[string]*Host, len(s.Hosts)),
		VMs:        make(map[string]*VM, len(s.VMs)),
		Migrations: make(map[string]*Migration, len(s.Migrations)),
		Clusters:   make(map[string]*Cluster, len(s.Clusters)),
		Drains:     make(map[string]*Drain, len(s.Drains)),
		Alarms:     make(map[string]*Alarm, len(s.Alarms)),
		VMSettings: make(map[string]*VMSettings, len(s.VMSettings)),
		Affinity:   make(map[string]*AffinityRule, len(s.Affinity)),
		Queue:      slices.Clone(s.Queue),
		History:    slices.Clone(s.History),
		Seq:        s.Seq,
		LogVersion: s.LogVersion,
		Leader:     s.Leader,
		Time:       s.Time,
		ACL:        s.ACL.clone(),
	}
	s.cloneIndex(c)
	for k, h := range s.Hosts {
		v := *h
		v.CPUFlags = slices.Clone(h.CPUFlags)
		v.CPUModels = slices.Clone(h.CPUModels)
		v.CPUVerdicts = slices.Clone(h.CPUVerdicts)
		for i := range v.CPUVerdicts {
			v.CPUVerdicts[i].Missing = slices.Clone(v.CPUVerdicts[i].Missing)
		}
		v.Networks = slices.Clone(h.Networks)
		v.StorageDomains = slices.Clone(h.StorageDomains)
		c.Hosts[k] = &v
	}
	for k, vm := range s.VMs {
		v := *vm
		v.CPUFlags = slices.Clone(vm.CPUFlags)
		v.NICs = slices.Clone(vm.NICs)
		v.Disks = slices.Clone(vm.Disks)
		v.HostDevices = slices.Clone(vm.HostDevices)
		c.VMs[k] = &v
	}
	for k, m := range s.Migrations {
		v := *m
		v.Tried = slices.Clone(m.Tried)
		v.Progress.Actions = slices.Clone(m.Progress.Actions)
		c.Migrations[k] = &v
	}
	for k, cl := range s.Clusters {
		v := *cl
		v.RequiredNetworks = slices.Clone(cl.RequiredNetworks)
		v.CPUBaseline = slices.Clone(cl.CPUBaseline)
		v.CPUBaselineFeatures = slices.Clone(cl.CPUBaselineFeatures)
		v.CPUBaselineHosts = slices.Clone(cl.CPUBaselineHosts)
		c.Clusters[k] = &v
	}
	for k, d := range s.Drains {
		v := *d
		v.Unmovable = maps.Clone(d.Unmovable)
		v.Moved = maps.Clone(d.Moved)
		c.Drains[k] = &v
	}
	for k, a := range s.Alarms {
		v := *a
		v.Hosts = slices.Clone(a.Hosts)
		c.Alarms[k] = &v
	}
	for k, vs := range s.VMSettings {
		c.VMSettings[k] = vs.clone()
	}
	for k, r := range s.Affinity {
		c.Affinity[k] = r.clone()
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

// VMKeys returns the VMs' keys sorted by name, then host, then key.
func (s *State) VMKeys() []string {
	keys := make([]string, 0, len(s.VMs))
	for k := range s.VMs {
		keys = append(keys, k)
	}
	s.sortVMKeys(keys)
	return keys
}

// sortVMKeys sorts keys of s.VMs by name, then host, then key, so VMs are
// listed and drained in the same order on every replica.
func (s *State) sortVMKeys(keys []string) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := s.VMs[keys[i]], s.VMs[keys[j]]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return keys[i] < keys[j]
	})
}

// ClusterNames returns the names of the configured clusters, sorted.
func (s *State) ClusterNames() []string {
	return slices.Sorted(maps.Keys(s.Clusters))
}

// ApplyShares sets the caps of the listed migrations still running, as a
// Reshare entry would; the scheduler uses it on its private copy.
func ApplyShares(s *State, shares []Share) { setShares(s, shares) }

// VMsOn returns the VMs whose current host is host, sorted by name. It
// sorts only that host's VMs: placement calls it for every candidate host,
// and sorting all 5,000 names of a large mesh each time cost the leader
// 44 MB/s of garbage during drains.
func (s *State) VMsOn(host string) []*VM {
	keys := s.vmKeysOn(host)
	out := make([]*VM, len(keys))
	for i, k := range keys {
		out[i] = s.VMs[k]
	}
	return out
}

// vmKeysOn returns the keys of the host's VMs, in VMsOn's order.
func (s *State) vmKeysOn(host string) []string {
	var keys []string
	if s.byHost != nil {
		keys = make([]string, 0, len(s.byHost[host]))
		for k := range s.byHost[host] {
			keys = append(keys, k)
		}
		s.sortVMKeys(keys)
		return keys
	}
	for k, vm := range s.VMs {
		if vm.Host == host {
			keys = append(keys, k)
		}
	}
	s.sortVMKeys(keys)
	return keys
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

// Slots counts the slots held by running migrations. An ending migration
// (see Ending) lends its slot to the next one's setup, at most one lent
// slot per slot of the limit, so that a count here never exceeds its
// limit and the migrations that exist never exceed twice it.
func (s *State) Slots() SlotUse {
	u := SlotUse{Out: map[string]int{}, In: map[string]int{}, Cluster: map[string]int{}}
	lent := SlotUse{Out: map[string]int{}, In: map[string]int{}, Cluster: map[string]int{}}
	limits := map[string]Cluster{} // of the clusters with ending migrations
	for _, m := range s.Running() {
		u.Out[m.Source]++
		u.In[m.Dest]++
		u.Cluster[m.Cluster]++
		if !s.Ending(m) {
			continue
		}
		cl, ok := limits[m.Cluster]
		if !ok {
			cl = s.Cluster(m.Cluster)
			limits[m.Cluster] = cl
		}
		if lent.Out[m.Source] < cl.MaxOutgoing {
			lent.Out[m.Source]++
			u.Out[m.Source]--
		}
		if lent.In[m.Dest] < cl.MaxIncoming {
			lent.In[m.Dest]++
			u.In[m.Dest]--
		}
		if lent.Cluster[m.Cluster] < cl.MaxConcurrent {
			lent.Cluster[m.Cluster]++
			u.Cluster[m.Cluster]--
		}
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
		if vm := s.VMOf(m); vm != nil {
			sum += vm.MemoryMiB
		}
	}
	return sum
}
