package migrate

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/fsm"
)

// TestGrantRechecksTheDestination: with meshd's GrantCheck, Apply refuses
// a grant to a host of another cluster (which v1 accepted, the fixture
// keeps one), to a host that is not Up, or to one short of memory, and
// accepts the one the scheduler would make.
func TestGrantRechecksTheDestination(t *testing.T) {
	f := fsm.New()
	f.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.SetGrantCheck(GrantCheck)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	apply := func(ct fsm.CommandType, p any) fsm.Result {
		data, err := fsm.Encode(ct, p)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(&raft.Log{Type: raft.LogCommand, Index: f.Index() + 1, Data: data}).(fsm.Result)
	}
	must := func(ct fsm.CommandType, p any) any {
		r := apply(ct, p)
		if r.Err != nil {
			t.Fatalf("%s: %v", ct, r.Err)
		}
		return r.Value
	}
	must(fsm.CmdLeaderElected, fsm.LeaderElected{Leader: "h1", Version: fsm.LogVersion, At: at})
	for _, h := range []struct {
		name, cluster string
		free          uint64
	}{{"h1", "c1", 8192}, {"h2", "c1", 8192}, {"h3", "c2", 8192}, {"h4", "c1", 1024}, {"h5", "c1", 8192}} {
		must(fsm.CmdUpsertHost, fsm.UpsertHost{At: at, Facts: fsm.HostFacts{Name: h.name, Cluster: h.cluster, Arch: "x86_64",
			MemTotalMiB: 16384, MemFreeMiB: h.free, CPUs: 8, CPUsFree: 8, Networks: []fsm.Network{{Name: "vmnet"}}, StorageDomains: []string{"shared"}}})
	}
	must(fsm.CmdSetHostState, fsm.SetHostState{Host: "h5", State: fsm.HostMaintenance, At: at})
	vm := modelVM("vm1", 2048)
	must(fsm.CmdSyncVMs, fsm.SyncVMs{Host: "h1", VMs: []fsm.VM{vm}, Index: f.Index(), At: at})
	id := must(fsm.CmdEnqueue, fsm.Enqueue{VM: vm.UUID, At: at}).(string)
	for dest, check := range map[string]string{"h3": CheckSameCluster, "h4": CheckMemory, "h5": CheckDestUp} {
		r := apply(fsm.CmdGrant, fsm.Grant{ID: id, Dest: dest, At: at})
		if !errors.Is(r.Err, fsm.ErrRejected) || !strings.Contains(r.Err.Error(), check+":") {
			t.Errorf("grant to %s: %v, want a %s refusal", dest, r.Err, check)
		}
	}
	must(fsm.CmdGrant, fsm.Grant{ID: id, Dest: "h2", At: at})
	if m := f.State().Migrations[id]; m.State != fsm.MigRunning || m.Dest != "h2" {
		t.Fatalf("after the good grant: %+v", m)
	}
}
