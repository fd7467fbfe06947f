package node

import (
	"strings"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// The go-metrics filter must keep per-heartbeat and per-packet samples out
// of the sink and let the listed ones in.
func TestHashicorpFilter(t *testing.T) {
	sink, err := hashicorpSink()
	if err != nil {
		t.Fatal(err)
	}
	gometrics.MeasureSinceWithLabels([]string{"raft", "replication", "heartbeat"}, time.Now(), []gometrics.Label{{Name: "peer_id", Value: "hX"}})
	gometrics.MeasureSince([]string{"raft", "replication", "heartbeat", "hX"}, time.Now())
	gometrics.IncrCounter([]string{"memberlist", "udp", "sent"}, 1)
	gometrics.MeasureSince([]string{"raft", "commitTime"}, time.Now())
	gometrics.IncrCounter([]string{"raft", "state", "leader"}, 1)
	got := map[string]bool{}
	ch := make(chan prometheus.Metric, 1000)
	go func() { sink.Collect(ch); close(ch) }()
	for m := range ch {
		got[m.Desc().String()] = true
	}
	has := func(name string) bool {
		for d := range got {
			if strings.Contains(d, `fqName: "`+name+`"`) {
				return true
			}
		}
		return false
	}
	for _, name := range []string{"hostmesh_raft_commitTime", "hostmesh_raft_state_leader"} {
		if !has(name) {
			t.Errorf("%s missing from the sink", name)
		}
	}
	for _, name := range []string{"hostmesh_raft_replication_heartbeat", "hostmesh_raft_replication_heartbeat_hX", "hostmesh_memberlist_udp_sent"} {
		if has(name) {
			t.Errorf("%s reached the sink", name)
		}
	}
}

// BenchmarkHeartbeatSample is the price of one Raft heartbeat sample with
// the sink installed: the filter's prefix lookup, dropped before the sink.
// An idle leader emits two per follower every HeartbeatTimeout/10.
func BenchmarkHeartbeatSample(b *testing.B) {
	if _, err := hashicorpSink(); err != nil {
		b.Fatal(err)
	}
	labels := []gometrics.Label{{Name: "peer_id", Value: "h2"}}
	start := time.Now()
	for b.Loop() {
		gometrics.MeasureSinceWithLabels([]string{"raft", "replication", "heartbeat"}, start, labels)
	}
}

// BenchmarkCommitTimeSample is one kept sample: a summary observation.
func BenchmarkCommitTimeSample(b *testing.B) {
	if _, err := hashicorpSink(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		gometrics.MeasureSince([]string{"raft", "commitTime"}, start)
	}
}

// BenchmarkHeartbeatSampleBlackhole is the same sample before meshd
// installed a sink (go-metrics' default): the baseline of the two above.
func BenchmarkHeartbeatSampleBlackhole(b *testing.B) {
	m := &gometrics.Metrics{}
	labels := []gometrics.Label{{Name: "peer_id", Value: "h2"}}
	start := time.Now()
	for b.Loop() {
		m.MeasureSinceWithLabels([]string{"raft", "replication", "heartbeat"}, start, labels)
	}
}
