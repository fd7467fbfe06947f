package migrate

import (
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

func TestConnections(t *testing.T) {
	fixed := func(mib uint64) fsm.Cluster { return fsm.Cluster{BandwidthMode: fsm.BandwidthFixed, BandwidthMiB: mib} }
	auto := func(net uint64) fsm.Cluster {
		return fsm.Cluster{BandwidthMode: fsm.BandwidthAuto, BandwidthMiB: 52, MigrationNetMiB: net}
	}
	for _, c := range []struct {
		name  string
		asked int
		cl    fsm.Cluster
		vcpus int
		want  int
	}{
		{"oVirt's default cap: one", 0, fixed(52), 4, 1},
		{"10 Gb/s network: one", 0, auto(1192), 8, 1},
		{"25 Gb/s network: two", 0, auto(25 * 1192 / 10), 8, 2},
		{"100 Gb/s network: ten, capped by vCPUs", 0, auto(10 * 1192), 4, 4},
		{"unknown vCPUs: by the network", 0, auto(10 * 1192), 0, 10},
		{"nothing known: one", 0, fsm.Cluster{}, 2, 1},
		{"cluster default wins over auto", 0, fsm.Cluster{MigrationParallel: 3, BandwidthMiB: 52}, 1, 3},
		{"asked wins over the cluster", 2, fsm.Cluster{MigrationParallel: 3}, 1, 2},
	} {
		if got := Connections(c.asked, c.cl, c.vcpus); got != c.want {
			t.Errorf("%s: Connections(%d, %+v, %d) = %d, want %d", c.name, c.asked, c.cl, c.vcpus, got, c.want)
		}
	}
}
