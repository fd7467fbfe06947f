package fsm

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	vm := VM{Name: "web 1", UUID: "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c01", MemoryMiB: 1024, VCPUs: 2, State: VMRunning,
		NICs: []NIC{{MAC: "52:54:00:00:00:01", Network: "vmnet", VLAN: 100}}, Disks: []Disk{{Target: "vda", Source: "/shared/web1.qcow2", StorageDomain: "shared", Cache: "none"}}}
	long := strings.Repeat("x", 300)
	many := make([]VM, MaxVMsPerHost+1)
	for i := range many {
		many[i] = VM{Name: "vm" + strconv.Itoa(i), State: VMRunning}
	}
	good := []struct {
		ct CommandType
		p  any
	}{
		{CmdUpsertHost, UpsertHost{Facts: host("h1.example.com", "prod_1", 4096)}},
		{CmdSetHostState, SetHostState{Host: "h1", State: HostDown, Reason: "gossip: failed"}},
		{CmdRemoveHost, RemoveHost{Host: "h1"}},
		{CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{vm}}},
		{CmdSyncVMs, SyncVMs{Host: "h1"}},
		{CmdEnqueue, Enqueue{VM: "web 1", Dest: "h2", Policy: "post-copy", At: at}},
		{CmdGrant, Grant{ID: "m12", Dest: "h2", BandwidthMiB: 52, At: at, Reshare: []Share{{ID: "m3", BandwidthMiB: 10}}}},
		{CmdProgress, ProgressUpdate{ID: "m1", Attempt: 1, Progress: Progress{Percent: 100, Actions: []string{"post-copy"}}}},
		{CmdFinish, Finish{ID: "m1", Attempt: 2, State: MigFailed, Reason: "boom", At: at}},
		{CmdCancel, Cancel{ID: "m1", At: at}},
		{CmdSetCluster, SetCluster{Cluster: DefaultCluster("c1")}},
		{CmdStartDrain, StartDrain{Host: "h1", Reason: "leave", At: at}},
		{CmdEndDrain, EndDrain{Host: "h1", State: DrainStuck, At: at}},
		{CmdActivate, Activate{Host: "h1"}},
		{CmdReshare, Reshare{Shares: []Share{{ID: "m1", BandwidthMiB: 5}}}},
		{CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: at}},
	}
	for _, g := range good {
		if err := Validate(mustEncode(t, g.ct, g.p)); err != nil {
			t.Errorf("%s %+v: %v", g.ct, g.p, err)
		}
	}
	negFacts := host("h1", "c1", 4096)
	negFacts.CPUs = -1
	freeFacts := host("h1", "c1", 4096)
	freeFacts.MemFreeMiB = MaxMemMiB + 1
	badNet := host("h1", "c1", 4096)
	badNet.Networks = []Network{{Name: "vmnet", VLAN: 5000}}
	cl := DefaultCluster("c1")
	cl.MaxIncoming = 0
	withMig := vm
	withMig.Migration = "m1"
	badState := vm
	badState.State = "exploded"
	badUUID := vm
	badUUID.UUID = "not-a-uuid"
	bad := []struct {
		why string
		ct  CommandType
		p   any
	}{
		{"host without a name", CmdUpsertHost, UpsertHost{Facts: HostFacts{Cluster: "c1"}}},
		{"host name with a slash", CmdUpsertHost, UpsertHost{Facts: host("h1/..", "c1", 1)}},
		{"host name with a space", CmdSetHostState, SetHostState{Host: "h 1", State: HostUp}},
		{"negative CPUs", CmdUpsertHost, UpsertHost{Facts: negFacts}},
		{"absurd free memory", CmdUpsertHost, UpsertHost{Facts: freeFacts}},
		{"VLAN out of range", CmdUpsertHost, UpsertHost{Facts: badNet}},
		{"unknown host state", CmdSetHostState, SetHostState{Host: "h1", State: "Exploded"}},
		{"too many VMs", CmdSyncVMs, SyncVMs{Host: "h1", VMs: many}},
		{"VM named twice", CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{vm, vm}}},
		{"VM claims a migration", CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{withMig}}},
		{"unknown VM state", CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{badState}}},
		{"bad UUID", CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{badUUID}}},
		{"VM name too long", CmdEnqueue, Enqueue{VM: long, At: at}},
		{"VM name with a control character", CmdEnqueue, Enqueue{VM: "a\x00b", At: at}},
		{"enqueue without a time", CmdEnqueue, Enqueue{VM: "vm1"}},
		{"grant of a bad ID", CmdGrant, Grant{ID: "x1", Dest: "h2", At: at}},
		{"absurd bandwidth", CmdGrant, Grant{ID: "m1", Dest: "h2", BandwidthMiB: 1 << 40, At: at}},
		{"progress without an attempt", CmdProgress, ProgressUpdate{ID: "m1", Progress: Progress{Percent: 5}}},
		{"progress over 100%", CmdProgress, ProgressUpdate{ID: "m1", Attempt: 1, Progress: Progress{Percent: 101}}},
		{"finish without an attempt", CmdFinish, Finish{ID: "m1", State: MigFailed, At: at}},
		{"finish to a non-final state", CmdFinish, Finish{ID: "m1", Attempt: 1, State: MigRunning, At: at}},
		{"cluster with no incoming slot", CmdSetCluster, SetCluster{Cluster: cl}},
		{"unknown migration transport", CmdSetCluster, SetCluster{Cluster: func() Cluster { c := DefaultCluster("c1"); c.MigrationTransport = "carrier-pigeon"; return c }()}},
		{"unknown drain end", CmdEndDrain, EndDrain{Host: "h1", State: "done", At: at}},
		{"leader without a name", CmdLeaderElected, LeaderElected{Version: 2, At: at}},
	}
	for _, b := range bad {
		if err := Validate(mustEncode(t, b.ct, b.p)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", b.why, err)
		}
	}
	for name, data := range malformed {
		if err := Validate(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	huge := append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":"`+strings.Repeat("a", MaxEntryBytes)+`"}`)...)
	if err := Validate(huge); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("an entry over MaxEntryBytes: %v", err)
	}
}
