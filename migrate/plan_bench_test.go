package migrate_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/node"
)

var planAt = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// planCluster is a cluster of hosts with total VMs: onH1 on h1 (the host
// drained), the rest spread over the others; 2 GiB VMs, room for all.
func planCluster(tb testing.TB, hosts, total, onH1 int) *fsm.State {
	tb.Helper()
	s := fsm.NewState()
	index := uint64(0)
	apply := func(ct fsm.CommandType, p any) {
		tb.Helper()
		data, err := fsm.Encode(ct, p)
		if err != nil {
			tb.Fatal(err)
		}
		index++
		if _, err := fsm.ApplyTo(s, index, data); err != nil {
			tb.Fatalf("command %s: %v", ct, err)
		}
	}
	apply(fsm.CmdLeaderElected, fsm.LeaderElected{Leader: "h1", Version: fsm.LogVersion, At: planAt})
	for i := 1; i <= hosts; i++ {
		apply(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: fsm.HostFacts{Name: fmt.Sprintf("h%d", i), Cluster: "c1", Arch: "x86_64",
			MemTotalMiB: 262144, MemFreeMiB: 131072, CPUs: 64, CPUsFree: 32, Networks: []fsm.Network{{Name: "vmnet"}},
			StorageDomains: []string{"shared"}}, At: planAt})
	}
	n := 0
	for i := 1; i <= hosts; i++ {
		count := (total - onH1) / (hosts - 1)
		if i == 1 {
			count = onH1
		} else if i <= 1+(total-onH1)%(hosts-1) {
			count++
		}
		var vms []fsm.VM
		for j := 0; j < count; j++ {
			n++
			name := fmt.Sprintf("vm%04d", n)
			vms = append(vms, fsm.VM{Name: name, UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), MemoryMiB: 2048, VCPUs: 2,
				State: fsm.VMRunning, NICs: []fsm.NIC{{Network: "vmnet"}},
				Disks: []fsm.Disk{{Target: "vda", Source: "/shared/" + name, StorageDomain: "shared", Cache: "none"}}})
		}
		apply(fsm.CmdSyncVMs, fsm.SyncVMs{Host: fmt.Sprintf("h%d", i), VMs: vms, At: planAt})
	}
	return s
}

// TestFastPlacementPlansAlike: the drain plan with placement's shortcuts
// is the plan without them, move by move.
func TestFastPlacementPlansAlike(t *testing.T) {
	s := planCluster(t, 30, 600, 30)
	fast, err := node.PlanDrain(s, "h1", planAt)
	if err != nil {
		t.Fatal(err)
	}
	defer migrate.SetFastPlacement(migrate.SetFastPlacement(false))
	slow, err := node.PlanDrain(s, "h1", planAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(fast.Moves) != 30 || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("plans differ:\nfast %+v\nslow %+v", fast, slow)
	}
}

// BenchmarkPlanDrain: the drain plan of a 50-VM host in a 100-host,
// 2,000-VM cluster, the way placement works now (fast) and as it did
// before (old: every host's VMs counted by a scan of every VM, every
// waiting migration placed over every host at each pass), in one run.
// make bench prints the ratio of the medians (scripts/bench.sh).
func BenchmarkPlanDrain(b *testing.B) {
	s := planCluster(b, 100, 2000, 50)
	for _, mode := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"old", false}} {
		b.Run(mode.name, func(b *testing.B) {
			defer migrate.SetFastPlacement(migrate.SetFastPlacement(mode.fast))
			for range b.N {
				p, err := node.PlanDrain(s, "h1", planAt)
				if err != nil || len(p.Moves) != 50 {
					b.Fatalf("plan: %d moves, %v", len(p.Moves), err)
				}
			}
		})
	}
}
