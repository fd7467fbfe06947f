package fsm

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestCloneIsDeepAndComplete checks the hand-written copy against a JSON
// round-trip (which cannot miss a field) and that no slice or map is shared.
func TestCloneIsDeepAndComplete(t *testing.T) {
	f := cluster3(t, 3)
	must(t, f, CmdSetCluster, SetCluster{Cluster: Cluster{Name: "c1", MaxOutgoing: 2, MaxIncoming: 2, MaxConcurrent: 5,
		BandwidthMode: BandwidthFixed, BandwidthMiB: 52, RequiredNetworks: []string{"vmnet"}, CPUBaseline: []string{"sse4_2"}}})
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{{Name: "big", UUID: testUUID("big"), State: VMRunning, CPUFlags: []string{"avx"},
		NICs: []NIC{{Network: "vmnet", VLAN: 100}}, Disks: []Disk{{Target: "vda", Cache: "none"}}, HostDevices: []string{"pci 0000:03:00.0"}}}})
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Migratable: boolp(false), At: t0})
	must(t, f, CmdCreateAffinity, CreateAffinity{Name: "r", Kind: AffinityHostAvoid, VMs: []string{"vm1"}, Hosts: []string{"h3"}, At: t0})
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	must(t, f, CmdProgress, ProgressUpdate{ID: ids[0], Progress: Progress{Actions: []string{"downtime 150ms"}}})
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: ids[0], State: MigFailed, Reason: "x", Retry: true, At: t0})
	must(t, f, CmdGrant, Grant{ID: ids[1], Dest: "h3", At: t0})
	must(t, f, CmdProgress, ProgressUpdate{ID: ids[1], Progress: Progress{Actions: []string{"post-copy"}}})
	s := f.State()
	c := s.Clone()
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(c)
	if string(a) != string(b) {
		t.Fatalf("clone differs from the JSON round-trip:\n%s\n%s", a, b)
	}
	// Mutating the clone must not reach the original.
	c.Hosts["h1"].Networks[0].Name = "changed"
	vmNamed(t, c, "big").NICs[0].VLAN = 1
	c.Migrations[ids[0]].Tried[0] = "changed"
	c.Migrations[ids[1]].Progress.Actions[0] = "changed"
	c.Clusters["c1"].CPUBaseline[0] = "changed"
	c.Drains["h1"].Moved["x"] = "y"
	c.Queue[0] = "changed"
	*c.VMSettings[vmNamed(t, c, "vm1").Key()].Migratable = true
	vmNamed(t, c, "big").HostDevices[0] = "changed"
	c.Affinity["r"].Hosts[0] = "changed"
	c.Affinity["r"].VMs[0] = "changed"
	after, _ := json.Marshal(s)
	if string(after) != string(a) {
		t.Fatal("mutating the clone changed the original")
	}
}

func BenchmarkClone5000VMs(b *testing.B) {
	s := NewState()
	for i := 0; i < 5000; i++ {
		name := fmt.Sprintf("vm%d", i)
		s.VMs[name] = &VM{Name: name, Host: fmt.Sprintf("h%d", i%100), MemoryMiB: 1024, VCPUs: 2, State: VMRunning,
			NICs: []NIC{{Network: "vmnet"}}, Disks: []Disk{{Target: "vda", Source: "/shared/" + name, Cache: "none"}}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = s.Clone()
	}
}
