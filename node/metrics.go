package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostmesh/hostmesh/fsm"
)

// metricsRegistry exposes the replicated state as Prometheus metrics, named
// after KubeVirt's migration metrics so existing dashboards map over.
func (n *Node) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&stateCollector{n: n})
	return reg
}

var (
	descHosts     = prometheus.NewDesc("hostmesh_hosts", "Hosts by state.", []string{"state"}, nil)
	descVMs       = prometheus.NewDesc("hostmesh_vms", "VMs known to the mesh.", nil, nil)
	descMigs      = prometheus.NewDesc("hostmesh_migrations", "Migrations by state (queue and history).", []string{"state"}, nil)
	descRemaining = prometheus.NewDesc("hostmesh_migration_data_remaining_bytes", "Data left to send.", []string{"migration", "vm"}, nil)
	descProcessed = prometheus.NewDesc("hostmesh_migration_data_processed_bytes", "Data sent so far.", []string{"migration", "vm"}, nil)
	descDirty     = prometheus.NewDesc("hostmesh_migration_dirty_memory_rate_bytes", "Guest memory dirty rate.", []string{"migration", "vm"}, nil)
	descRate      = prometheus.NewDesc("hostmesh_migration_memory_transfer_rate_bytes", "Transfer rate.", []string{"migration", "vm"}, nil)
	descLeader    = prometheus.NewDesc("hostmesh_raft_leader", "1 when this node is the Raft leader.", nil, nil)
)

type stateCollector struct{ n *Node }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHosts, descVMs, descMigs, descRemaining, descProcessed, descDirty, descRate, descLeader} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	leader := 0.0
	if c.n.IsLeader() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	c.n.fsm.Read(func(s *fsm.State) {
		hosts := map[fsm.HostState]int{}
		for _, h := range s.Hosts {
			hosts[h.State]++
		}
		for st, k := range hosts {
			ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(k), string(st))
		}
		ch <- prometheus.MustNewConstMetric(descVMs, prometheus.GaugeValue, float64(len(s.VMs)))
		migs := map[fsm.MigrationState]int{}
		for _, m := range s.Migrations {
			migs[m.State]++
		}
		for st, k := range migs {
			ch <- prometheus.MustNewConstMetric(descMigs, prometheus.GaugeValue, float64(k), string(st))
		}
		for _, m := range s.Running() {
			p := m.Progress
			ch <- prometheus.MustNewConstMetric(descRemaining, prometheus.GaugeValue, float64(p.RemainingBytes), m.ID, m.VM)
			ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.GaugeValue, float64(p.ProcessedBytes), m.ID, m.VM)
			ch <- prometheus.MustNewConstMetric(descDirty, prometheus.GaugeValue, float64(p.DirtyRateBps), m.ID, m.VM)
			ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, p.MiBps*(1<<20), m.ID, m.VM)
		}
	})
}
