package node

import (
	"sync"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// hashicorp/raft and memberlist report through go-metrics' process-wide
// global. Its "compat" package is the one they import, and it routes to
// armon/go-metrics or hashicorp/go-metrics depending on a build tag: using
// compat here too puts our sink on whichever global they write to.
//
// The global is per process, so meshd exports its one Raft and one
// memberlist. (An in-process test mesh mixes its nodes' samples; the
// state series are per node.)

// hashicorpAllowed are the only go-metrics keys kept. Raft emits a sample
// per heartbeat and per RPC and memberlist one per packet; everything not
// listed is dropped by the filter before the sink sees it, so an idle
// leader's heartbeats cost one prefix lookup each, not a summary update.
// Names stay as the libraries spell them (as Consul exports them), so
// existing Consul/Nomad panels for Raft and memberlist apply; timers are
// summaries in milliseconds.
var hashicorpAllowed = []string{
	"hostmesh.raft.commitTime",           // leader: entry appended → committed
	"hostmesh.raft.leader.lastContact",   // leader: time since each follower answered
	"hostmesh.raft.state.",               // counters: became leader / follower / candidate
	"hostmesh.raft.transition.",          // counters: heartbeat or lease timeouts
	"hostmesh.raft.apply",                // counter: entries applied by the leader
	"hostmesh.raft.fsm.apply",            // summary: FSM apply time
	"hostmesh.raft.snapshot.",            // snapshot create/persist
	"hostmesh.memberlist.msg.",           // alive / suspect / dead messages
	"hostmesh.memberlist.degraded.",      // probes that needed help / timed out
	"hostmesh.memberlist.health.score",   // local health (0 healthy)
	"hostmesh.memberlist.node.instances", // members by state, memberlist's view
}

var hcSink struct {
	once sync.Once
	sink *gmprom.PrometheusSink
	err  error
}

// hashicorpSink installs the go-metrics Prometheus sink as the global once
// per process and returns it for each node's registry.
func hashicorpSink() (*gmprom.PrometheusSink, error) {
	hcSink.once.Do(func() {
		// Never expire: a counter that vanished after a quiet minute and came
		// back from zero would hide its increments from rate().
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
			Expiration: 0,
			Registerer: prometheus.NewRegistry(), // each node registers it itself
		})
		if err != nil {
			hcSink.err = err
			return
		}
		cfg := gometrics.DefaultConfig("hostmesh")
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false // the Go collector covers it, without a polling goroutine
		cfg.FilterDefault = false
		cfg.AllowedPrefixes = hashicorpAllowed
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			hcSink.err = err
			return
		}
		hcSink.sink = sink
	})
	return hcSink.sink, hcSink.err
}

// observeLeaders counts every leader this node sees elected, from Raft's
// observer (one event per change, nothing per heartbeat). Every host counts
// the elections it saw; "leader flapping" is their rate.
func (n *Node) observeLeaders() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	n.go_(func() {
		defer n.raft.DeregisterObserver(obs)
		for {
			select {
			case <-n.ctx.Done():
				return
			case o := <-ch:
				if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
					n.metrics.leaderChanges.Inc()
				}
			}
		}
	})
}
