package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Who exports what (docs/metrics.md has the full list):
//
//   - The leader exports the series derived from the replicated state (hosts,
//     VMs, slots, the queue, running migrations, drains): every replica
//     holds the same state, so one exporter counts each object once, and a
//     sum over the mesh's targets is right without dedup.
//   - Every host exports what only it knows: the migrations it ran or ended
//     (counters and histograms, see metrics_migrations.go), its refusals, its
//     Raft and gossip view, its inventory's freshness, and the Go and process
//     collectors.
//
// Nothing here runs per sample or per Raft entry: the state series are read
// from the replica when Prometheus scrapes, and the counters move only when
// a migration ends or a request is refused.

// nodeMetrics are one meshd's own series. Each node has its own registry
// (tests run several nodes in one process).
type nodeMetrics struct {
	reg *prometheus.Registry
	migrationCounters
}

// newNodeMetrics builds the registry /metrics serves.
func (n *Node) newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{reg: prometheus.NewRegistry(), migrationCounters: newMigrationCounters()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{n: n},
		&hostCollector{n: n},
	)
	m.migrationCounters.register(m.reg)
	registerTransportMetrics(m.reg, n)
	if sink, err := hashicorpSink(); err != nil {
		n.log.Warn("raft and gossip metrics unavailable", "err", err)
	} else {
		m.reg.MustRegister(sink)
	}
	return m
}
