package node

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
)

// hostCollector exports what every host knows of itself: its Raft role and
// indexes, its gossip view, its inventory's freshness. Read on scrape.
type hostCollector struct{ n *Node }

var (
	descBuildInfo    = gdesc("hostmesh_build_info", "1, with the meshd version.", "version")
	descLeader       = gdesc("hostmesh_raft_leader", "1 when this host is the Raft leader.")
	descLeaderKnown  = gdesc("hostmesh_raft_leader_known", "1 when this host knows a Raft leader.")
	descLastIndex    = gdesc("hostmesh_raft_last_index", "Last Raft log index this host stored.")
	descApplied      = gdesc("hostmesh_raft_applied_index", "Last Raft log index this host applied to its replica.")
	descPeers        = gdesc("hostmesh_raft_peers", "Raft servers in this host's configuration, by suffrage.", "suffrage")
	descReplicaSeq   = gdesc("hostmesh_replica_migrations_created", "Migrations ever created, as this host's replica has applied them (grows only; for watching one replica catch up).")
	descMembers      = gdesc("hostmesh_gossip_members", "Gossip members by status, as this host sees them.", "status")
	descDropped      = gdesc("hostmesh_gossip_events_dropped_total", "Membership events dropped because the leader's queue was full (it reconciles from the member list).")
	descRefused      = gdesc("hostmesh_gossip_input_refused_total", "Gossiped records, pulls and state messages refused: invalid, or a record its owner does not claim (disowned).", "reason")
	descPruned       = gdesc("hostmesh_gossip_pruned_total", "Entries of vanished hosts removed from this host's gossip table.")
	descInvTime      = gdesc("hostmesh_inventory_last_success_timestamp_seconds", "When this host last read its hypervisor's inventory successfully (Unix time).")
	descHypervisorUp = gdesc("hostmesh_hypervisor_up", "1 when this host's last call to its hypervisor succeeded.")
)

var gossipStatuses = []gossip.Status{gossip.StatusAlive, gossip.StatusSuspect, gossip.StatusDead, gossip.StatusLeft}

func (c *hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuildInfo, descLeader, descLeaderKnown, descLastIndex, descApplied, descPeers,
		descReplicaSeq, descMembers, descDropped, descRefused, descPruned, descInvTime, descHypervisorUp} {
		ch <- d
	}
}

func (c *hostCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	g(descBuildInfo, 1, n.cfg.Version)
	g(descLeader, b2f(n.IsLeader()))
	_, id := n.raft.LeaderWithID()
	g(descLeaderKnown, b2f(id != ""))
	g(descLastIndex, float64(n.raft.LastIndex()))
	g(descApplied, float64(n.raft.AppliedIndex()))
	if cfg, err := n.raftConfig(); err == nil {
		voters, nonvoters := 0, 0
		for _, s := range cfg {
			if s.Suffrage == raft.Voter {
				voters++
			} else {
				nonvoters++
			}
		}
		g(descPeers, float64(voters), "voter")
		g(descPeers, float64(nonvoters), "nonvoter")
	}
	var seq uint64
	n.fsm.Read(func(s *fsm.State) { seq = s.Seq })
	g(descReplicaSeq, float64(seq))
	byStatus := map[gossip.Status]int{}
	for _, m := range n.gossip.Members() {
		byStatus[m.Status]++
	}
	for _, st := range gossipStatuses {
		g(descMembers, float64(byStatus[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n.gossip.Dropped()))
	gs := n.gossip.Stats()
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(gs.Rejected), "invalid")
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(gs.Disowned), "disowned")
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(gs.Pruned))
	if t := n.inv.lastOK.Load(); t > 0 {
		g(descInvTime, float64(t)/1e9)
	}
	g(descHypervisorUp, b2f(n.inv.hvErr.Load() == nil))
}
