package node

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostmesh/hostmesh/fsm"
)

// stateCollector exports the replicated state on the leader only (see
// metrics.go). It reads the replica once per scrape, copies the few numbers
// it needs under the read lock and builds the samples after.
type stateCollector struct{ n *Node }

func gdesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descHosts        = gdesc("hostmesh_hosts", "Hosts by state.", "state")
	descVMs          = gdesc("hostmesh_vms", "VMs known to the mesh.")
	descHostInfo     = gdesc("hostmesh_host_info", "1 per host, with its cluster, hypervisor, meshd version and CPU model.", "host", "cluster", "hypervisor", "version", "cpu_model")
	descHostState    = gdesc("hostmesh_host_state", "1 for the state the host is in, 0 for the others.", "host", "state")
	descHostMem      = gdesc("hostmesh_host_memory_bytes", "Host memory.", "host")
	descHostMemFree  = gdesc("hostmesh_host_memory_free_bytes", "Host memory free, as its last inventory read it.", "host")
	descHostCPUs     = gdesc("hostmesh_host_cpus", "Host CPUs.", "host")
	descHostCPUsFree = gdesc("hostmesh_host_cpus_free", "Host CPUs not given to running guests.", "host")
	descHostVMs      = gdesc("hostmesh_host_vms", "VMs on the host.", "host")
	descSlotsUsed    = gdesc("hostmesh_host_migration_slots_used", "Running migrations out of (direction=out) or into (in) the host.", "host", "direction")
	descSlotsLimit   = gdesc("hostmesh_host_migration_slots_limit", "The host's cluster limit of outgoing (out) or incoming (in) migrations.", "host", "direction")
	descClSlotsUsed  = gdesc("hostmesh_cluster_migration_slots_used", "Running migrations in the cluster.", "cluster")
	descClSlotsLimit = gdesc("hostmesh_cluster_migration_slots_limit", "The cluster's limit of running migrations.", "cluster")
	descQueue        = gdesc("hostmesh_migration_queue_length", "Migrations waiting for slots.", "cluster")

	migLabels     = []string{"migration", "vm", "source", "dest"}
	descDataTotal = gdesc("hostmesh_migration_data_total_bytes", "Running migration: data to send in all (memory and copied disks).", migLabels...)
	descProcessed = gdesc("hostmesh_migration_data_processed_bytes", "Running migration: data sent so far.", migLabels...)
	descRemaining = gdesc("hostmesh_migration_data_remaining_bytes", "Running migration: data left to send.", migLabels...)
	descRate      = gdesc("hostmesh_migration_memory_transfer_rate_bytes_per_second", "Running migration: transfer rate.", migLabels...)
	descDirty     = gdesc("hostmesh_migration_dirty_memory_rate_bytes_per_second", "Running migration: guest memory dirty rate.", migLabels...)
	descIteration = gdesc("hostmesh_migration_iteration", "Running migration: memory pass (pre-copy round).", migLabels...)
	descProgress  = gdesc("hostmesh_migration_progress_ratio", "Running migration: 1 - remaining/total, held below 1 until done.", migLabels...)
	descElapsed   = gdesc("hostmesh_migration_elapsed_seconds", "Running migration: time since its job started.", migLabels...)
	descBandwidth = gdesc("hostmesh_migration_bandwidth_limit_bytes_per_second", "Running migration: the bandwidth cap granted.", migLabels...)

	descSplitBrain = gdesc("hostmesh_split_brain_alarm", "VMs under a split-brain alarm: one VM (one UUID) running on two live hosts; 0 when none.")
	descDrainVMs   = gdesc("hostmesh_drain_vms", "VMs of the host's last drain: moved, migrating, pending (not moved yet), unmovable. Their sum is the drain's total.", "host", "state")
	descDrainState = gdesc("hostmesh_drain_state", "1 for the state of the host's last drain (active, done, stuck, cancelled).", "host", "state")
)

var (
	hostStates  = []fsm.HostState{fsm.HostUp, fsm.HostPreparingForMaintenance, fsm.HostMaintenance, fsm.HostNonOperational, fsm.HostDown, fsm.HostLeft}
	drainStates = []string{fsm.DrainActive, fsm.DrainDone, fsm.DrainStuck, fsm.DrainCancelled}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHosts, descVMs, descHostInfo, descHostState, descHostMem, descHostMemFree,
		descHostCPUs, descHostCPUsFree, descHostVMs, descSlotsUsed, descSlotsLimit, descClSlotsUsed, descClSlotsLimit,
		descQueue, descDataTotal, descProcessed, descRemaining, descRate, descDirty, descIteration, descProgress,
		descElapsed, descBandwidth, descDrainVMs, descDrainState, descSplitBrain} {
		ch <- d
	}
}

// stateSnapshot is what one scrape needs from the state, copied under the
// replica's read lock.
type stateSnapshot struct {
	vms        int
	hosts      []fsm.Host
	limits     map[string]fsm.Cluster // by cluster
	vmsOn      map[string]int
	slots      fsm.SlotUse
	queued     map[string]int // by cluster
	running    []fsm.Migration
	drains     []drainFigures
	clusters   []string
	splitBrain int
}

type drainFigures struct {
	host, state                          string
	moved, migrating, pending, unmovable int
}

func (n *Node) snapshotForMetrics() stateSnapshot {
	var ss stateSnapshot
	n.fsm.Read(func(s *fsm.State) {
		ss.vms = len(s.VMs)
		for _, a := range s.Alarms {
			if a.Kind == fsm.AlarmSplitBrain {
				ss.splitBrain++
			}
		}
		ss.limits = map[string]fsm.Cluster{}
		ss.vmsOn = make(map[string]int, len(s.Hosts))
		ss.hosts = make([]fsm.Host, 0, len(s.Hosts))
		for _, name := range s.HostNames() {
			h := *s.Hosts[name]
			h.CPUFlags, h.CPUModels, h.Networks, h.StorageDomains = nil, nil, nil, nil
			ss.hosts = append(ss.hosts, h)
			if _, ok := ss.limits[h.Cluster]; !ok {
				ss.limits[h.Cluster] = s.Cluster(h.Cluster)
			}
		}
		for _, name := range s.ClusterNames() {
			ss.limits[name] = s.Cluster(name)
		}
		for _, vm := range s.VMs {
			ss.vmsOn[vm.Host]++
		}
		ss.slots = s.Slots()
		ss.queued = map[string]int{}
		for _, id := range s.Queue {
			m := s.Migrations[id]
			if m == nil {
				continue
			}
			switch m.State {
			case fsm.MigQueued:
				ss.queued[m.Cluster]++
			case fsm.MigRunning:
				c := *m
				c.Tried, c.Progress.Actions = nil, nil
				ss.running = append(ss.running, c)
			}
		}
		for host, d := range s.Drains {
			f := drainFigures{host: host, state: d.State, moved: len(d.Moved)}
			if d.State == fsm.DrainActive || d.State == fsm.DrainStuck {
				for _, vm := range s.VMsOn(host) {
					switch {
					case d.Unmovable[vm.Name] != "":
						f.unmovable++
					case vm.Migration != "" && s.Migrations[vm.Migration] != nil && s.Migrations[vm.Migration].State == fsm.MigRunning:
						f.migrating++
					default:
						f.pending++
					}
				}
			} else {
				f.unmovable = len(d.Unmovable)
			}
			ss.drains = append(ss.drains, f)
		}
	})
	for name := range ss.limits {
		ss.clusters = append(ss.clusters, name)
	}
	sort.Strings(ss.clusters)
	return ss
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.n.IsLeader() {
		return
	}
	ss := c.n.snapshotForMetrics()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	byState := map[fsm.HostState]int{}
	for _, h := range ss.hosts {
		byState[h.State]++
		cl := ss.limits[h.Cluster]
		g(descHostInfo, 1, h.Name, h.Cluster, h.Hypervisor, h.Version, h.CPUModel)
		for _, st := range hostStates {
			g(descHostState, b2f(h.State == st), h.Name, string(st))
		}
		g(descHostMem, float64(h.MemTotalMiB)*(1<<20), h.Name)
		g(descHostMemFree, float64(h.MemFreeMiB)*(1<<20), h.Name)
		g(descHostCPUs, float64(h.CPUs), h.Name)
		g(descHostCPUsFree, float64(h.CPUsFree), h.Name)
		g(descHostVMs, float64(ss.vmsOn[h.Name]), h.Name)
		g(descSlotsUsed, float64(ss.slots.Out[h.Name]), h.Name, "out")
		g(descSlotsUsed, float64(ss.slots.In[h.Name]), h.Name, "in")
		g(descSlotsLimit, float64(cl.MaxOutgoing), h.Name, "out")
		g(descSlotsLimit, float64(cl.MaxIncoming), h.Name, "in")
	}
	for _, st := range hostStates {
		g(descHosts, float64(byState[st]), string(st))
	}
	g(descVMs, float64(ss.vms))
	g(descSplitBrain, float64(ss.splitBrain))
	for _, name := range ss.clusters {
		g(descClSlotsUsed, float64(ss.slots.Cluster[name]), name)
		g(descClSlotsLimit, float64(ss.limits[name].MaxConcurrent), name)
		g(descQueue, float64(ss.queued[name]), name)
	}
	for _, m := range ss.running {
		p := m.Progress
		l := []string{m.ID, m.VM, m.Source, m.Dest}
		g(descDataTotal, float64(p.TotalBytes), l...)
		g(descProcessed, float64(p.ProcessedBytes), l...)
		g(descRemaining, float64(p.RemainingBytes), l...)
		g(descRate, p.MiBps*(1<<20), l...)
		g(descDirty, float64(p.DirtyRateBps), l...)
		g(descIteration, float64(p.Iteration), l...)
		g(descProgress, p.Percent/100, l...)
		g(descElapsed, float64(p.ElapsedMs)/1000, l...)
		g(descBandwidth, float64(m.GrantedMiB)*(1<<20), l...)
	}
	for _, d := range ss.drains {
		g(descDrainVMs, float64(d.moved), d.host, "moved")
		g(descDrainVMs, float64(d.migrating), d.host, "migrating")
		g(descDrainVMs, float64(d.pending), d.host, "pending")
		g(descDrainVMs, float64(d.unmovable), d.host, "unmovable")
		for _, st := range drainStates {
			g(descDrainState, b2f(d.state == st), d.host, st)
		}
	}
}
