package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// fixtureEntry is one Raft log entry as a fixture stores it.
type fixtureEntry struct {
	Index uint64
	Type  raft.LogType
	Data  []byte
}

// scenario builds the log a mesh writes, entry by entry, with this
// version's Encode: hosts joining, inventories, every command type, the
// refusals a leader meets (a stale grant over a slot limit, a second
// migration of a held VM) and the junk a v1 API let into the log. It is
// what -fixtures.record writes into testdata/<dir>: run it again when a
// new entry or snapshot format appears, into a new directory, so every
// format ever written stays replayed.
type scenario struct {
	entries []fixtureEntry
	// snapAt is the index after which the recorded snapshot is taken.
	snapAt uint64
	at     time.Time
}

func (b *scenario) add(t raft.LogType, data []byte) {
	b.entries = append(b.entries, fixtureEntry{Index: uint64(len(b.entries) + 1), Type: t, Data: data})
}

func (b *scenario) cmd(ct CommandType, payload any) {
	data, err := Encode(ct, payload)
	if err != nil {
		panic(fmt.Sprintf("scenario: %v", err))
	}
	b.add(raft.LogCommand, data)
}

// tick advances the scenario's clock: commands carry their own times.
func (b *scenario) tick(d time.Duration) time.Time {
	b.at = b.at.Add(d)
	return b.at
}

// fixtureHost is a host's facts as a sim meshd gossips them.
func fixtureHost(i int, cluster string, memFree uint64) HostFacts {
	name := fmt.Sprintf("h%d", i)
	return HostFacts{
		Name: name, Cluster: cluster,
		APIAddr: fmt.Sprintf("127.0.0.1:74%02d", i), RaftAddr: fmt.Sprintf("127.0.0.1:73%02d", i),
		MgmtAddr: "127.0.0.1", MigrationAddr: "127.0.0.1",
		HypervisorURI: "sim://" + name, Hypervisor: "sim",
		Arch: "x86_64", CPUModel: "Skylake-Server", CPUFlags: []string{"aes", "avx2", "sse4_2"},
		MemTotalMiB: 16384, MemFreeMiB: memFree, CPUs: 32, CPUsFree: 28,
		Networks:       []Network{{Name: "vmnet"}, {Name: "vmnet", VLAN: 100}},
		StorageDomains: []string{"shared"}, Version: "v1-fixture",
	}
}

// fixtureVM is a guest as a sim host reports it. uuid may be empty: a v1
// state keyed VMs by name and some writers left the UUID out.
func fixtureVM(name, uuid string, memMiB uint64) VM {
	return VM{Name: name, UUID: uuid, MemoryMiB: memMiB, VCPUs: 2, CPUModel: "Skylake-Server",
		NICs:  []NIC{{MAC: "52:54:00:00:00:01", Network: "vmnet", VLAN: 100}},
		Disks: []Disk{{Target: "vda", Source: "/shared/" + name + ".qcow2", StorageDomain: "shared", Cache: "none", Format: "qcow2", SizeBytes: 1 << 30}},
		State: VMRunning}
}

// buildScenario returns the fixture log of this version (v2: validated
// commands, VMs by UUID, actors, events, alarms, retention). The v1
// fixtures were recorded by the scenario of commit 078733e, without
// LeaderElected and with the junk a v1 leader logged: a v2 log holds
// none (Validate) and a replica would stop at it.
func buildScenario() *scenario {
	b := &scenario{at: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	const (
		db1, db2, web1, web2 = "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c01", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c02", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c03", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c04"
		cache1, other1       = "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c05", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c06"
	)
	b.add(raft.LogConfiguration, []byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0x90})
	b.add(raft.LogNoop, nil)
	b.cmd(CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: b.tick(0)})
	for i := 1; i <= 4; i++ {
		cl := "c1"
		if i == 4 {
			cl = "c2"
		}
		b.cmd(CmdUpsertHost, UpsertHost{Facts: fixtureHost(i, cl, 12288), At: b.tick(time.Millisecond)})
	}
	b.cmd(CmdSetCluster, SetCluster{Cluster: Cluster{Name: "c1", MaxOutgoing: 2, MaxIncoming: 1, MaxConcurrent: 3,
		BandwidthMode: BandwidthAuto, BandwidthMiB: 52, MigrationNetMiB: 200, Policy: "minimal-downtime", MigrationTransport: TransportTLS,
		RequiredNetworks: []string{"vmnet"}, CPUBaseline: []string{"sse4_2"}}, Actor: "token:admin", At: b.tick(time.Second)})
	sync := func(host string, vms ...VM) {
		b.cmd(CmdSyncVMs, SyncVMs{Host: host, VMs: vms, Index: uint64(len(b.entries)), At: b.tick(time.Millisecond)})
	}
	sync("h1", fixtureVM("db1", db1, 2048), fixtureVM("db2", db2, 2048), fixtureVM("web1", web1, 1024), fixtureVM("web2", web2, 1024))
	sync("h2", fixtureVM("cache1", cache1, 512))
	sync("h4", fixtureVM("other1", other1, 512))

	// m1: placed, three samples (25% and 75% are events), success.
	b.cmd(CmdEnqueue, Enqueue{VM: db1, At: b.tick(time.Second), Actor: "token:ops"})
	b.cmd(CmdGrant, Grant{ID: "m1", Dest: "h2", BandwidthMiB: 200, Reason: "h2: 11776 MiB room, 1 VMs, 0 incoming migrations; best of 2 passing hosts", At: b.tick(50 * time.Millisecond)})
	for i, pct := range []float64{12.5, 48, 91} {
		b.cmd(CmdProgress, ProgressUpdate{ID: "m1", Attempt: 1, Progress: Progress{Percent: pct, ElapsedMs: int64(400 * (i + 1)),
			TotalBytes: 2 << 30, ProcessedBytes: uint64(pct / 100 * float64(2<<30)), RemainingBytes: uint64((100 - pct) / 100 * float64(2<<30)),
			MiBps: 198.5, DirtyRateBps: 4 << 20, Iteration: i + 1, MaxDowntimeMs: 100}})
	}
	// m2 pinned, waits for h2's one incoming slot; db1 is held; a stale
	// grant over the slot limit is refused.
	b.cmd(CmdEnqueue, Enqueue{VM: "db2", Dest: "h2", Policy: "post-copy", BandwidthMiB: 100, At: b.tick(time.Second), Actor: "anonymous"})
	b.cmd(CmdEnqueue, Enqueue{VM: db1, At: b.tick(time.Millisecond), Actor: "anonymous"})
	b.cmd(CmdGrant, Grant{ID: "m2", Dest: "h2", BandwidthMiB: 100, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m1", Attempt: 1, State: MigSucceeded, DowntimeMs: 84, At: b.tick(2 * time.Second), Actor: "host h1"})
	// h1's inventory read before the Finish still lists db1: out of date.
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{fixtureVM("db1", db1, 2048), fixtureVM("db2", db2, 2048), fixtureVM("web1", web1, 1024),
		fixtureVM("web2", web2, 1024)}, Index: uint64(len(b.entries) - 2), At: b.tick(time.Millisecond)})
	sync("h2", fixtureVM("cache1", cache1, 512), fixtureVM("db1", db1, 2048))
	b.cmd(CmdGrant, Grant{ID: "m2", Dest: "h2", BandwidthMiB: 100, Reason: "h2: pinned by the user; all 14 checks pass", At: b.tick(10 * time.Millisecond)})
	b.cmd(CmdProgress, ProgressUpdate{ID: "m2", Attempt: 1, Progress: Progress{Percent: 70, ElapsedMs: 5000, Iteration: 4,
		PostCopy: true, PostCopyAtMs: 4200, ThrottlePercent: 20, Actions: []string{"downtime 150ms", "post-copy"}}})

	// m3 (queued by name, as v1 entries did): fails on h3, retried, then
	// cancelled while queued; a late sample of attempt 1 is refused.
	b.cmd(CmdEnqueue, Enqueue{VM: "web1", At: b.tick(time.Second), Actor: "token:ops"})
	b.cmd(CmdGrant, Grant{ID: "m3", Dest: "h3", BandwidthMiB: 100, Reason: "h3: best of 1 passing hosts", At: b.tick(5 * time.Millisecond),
		Reshare: []Share{{ID: "m2", BandwidthMiB: 100}}})
	b.cmd(CmdFinish, Finish{ID: "m3", Attempt: 1, State: MigFailed, Reason: "start migration of web1 to h3: destination refused", Retry: true, At: b.tick(time.Second), Actor: "host h1"})
	b.cmd(CmdProgress, ProgressUpdate{ID: "m3", Attempt: 1, Progress: Progress{Percent: 5}})
	b.cmd(CmdFinish, Finish{ID: "m2", Attempt: 1, State: MigSucceeded, DowntimeMs: 12, At: b.tick(time.Second), Actor: "host h1"})
	b.cmd(CmdReshare, Reshare{Shares: []Share{{ID: "m2", BandwidthMiB: 200}}})
	b.cmd(CmdCancel, Cancel{ID: "m3", At: b.tick(time.Second), Actor: "token:ops"})
	sync("h1", fixtureVM("web1", web1, 1024), fixtureVM("web2", web2, 1024))
	sync("h2", fixtureVM("cache1", cache1, 512), fixtureVM("db1", db1, 2048), fixtureVM("db2", db2, 2048))

	// h3 fails and comes back; then it runs a copy of db2: split brain,
	// raised and cleared.
	b.cmd(CmdSetHostState, SetHostState{Host: "h3", State: HostDown, Reason: "gossip: host failed (no answer to probes)", At: b.tick(time.Second)})
	b.cmd(CmdSetHostState, SetHostState{Host: "h3", State: HostUp, At: b.tick(time.Second)})
	sync("h3", fixtureVM("db2", db2, 2048))
	b.cmd(CmdEnqueue, Enqueue{VM: db2, At: b.tick(time.Millisecond), Actor: "token:ops"}) // refused: split brain
	sync("h3")

	// A drain of h2 (cache1, db1, db2: m4, m5, m6), cancelled with db2
	// still queued; the snapshot is taken mid-drain.
	b.cmd(CmdStartDrain, StartDrain{Host: "h2", Reason: "operator", At: b.tick(time.Minute), Actor: "token:ops"})
	b.cmd(CmdGrant, Grant{ID: "m4", Dest: "h3", BandwidthMiB: 100, Reason: "h3: best of 2 passing hosts", At: b.tick(5 * time.Millisecond)})
	b.cmd(CmdGrant, Grant{ID: "m5", Dest: "h1", BandwidthMiB: 100, Reason: "h1: best of 2 passing hosts", At: b.tick(5 * time.Millisecond),
		Reshare: []Share{{ID: "m4", BandwidthMiB: 100}}})
	b.snapAt = uint64(len(b.entries))
	b.cmd(CmdProgress, ProgressUpdate{ID: "m4", Attempt: 1, Progress: Progress{Percent: 33, ElapsedMs: 900, Iteration: 1}})
	b.cmd(CmdCancel, Cancel{ID: "m5", At: b.tick(time.Second), Actor: "token:ops"})
	b.cmd(CmdFinish, Finish{ID: "m5", Attempt: 1, State: MigCancelled, Reason: "cancelled by operator: job aborted, VM stays on h2", At: b.tick(time.Second), Actor: "host h2"})
	b.cmd(CmdFinish, Finish{ID: "m4", Attempt: 1, State: MigSucceeded, DowntimeMs: 40, At: b.tick(time.Second), Actor: "host h2"})
	b.cmd(CmdEndDrain, EndDrain{Host: "h2", State: DrainCancelled, At: b.tick(time.Second), Actor: "token:ops"})
	b.cmd(CmdActivate, Activate{Host: "h2", At: b.tick(time.Second), Actor: "token:ops"}) // refused: already Up
	sync("h3", fixtureVM("cache1", cache1, 512))

	// A leave of h4, alone in c2: its VM cannot move, the drain is stuck;
	// the operator activates it, stops the VM, it leaves and the leader
	// removes it.
	b.cmd(CmdStartDrain, StartDrain{Host: "h4", Reason: "leave", At: b.tick(time.Minute), Actor: "host h4"})
	b.cmd(CmdFinish, Finish{ID: "m7", Attempt: 1, State: MigFailed, Reason: "place vm other1 in cluster c2: no host can take the vm: h4: source; no other host in the cluster",
		At: b.tick(time.Millisecond), Actor: "host h1"})
	b.cmd(CmdActivate, Activate{Host: "h4", At: b.tick(time.Second), Actor: "token:admin"})
	sync("h4")
	b.cmd(CmdSetHostState, SetHostState{Host: "h4", State: HostLeft, Reason: "left the mesh", At: b.tick(time.Second)})
	b.cmd(CmdRemoveHost, RemoveHost{Host: "h4", At: b.tick(time.Hour), Actor: "host h1"})
	b.cmd(CmdRemoveHost, RemoveHost{Host: "h4", At: b.tick(time.Second), Actor: "host h1"}) // refused: gone

	// A newer version's command this one does not know, flagged ignorable.
	b.add(raft.LogCommand, append([]byte{byte(IgnorableFlag | 99)}, []byte(`{"hint":"from the future"}`)...))

	// A drain that completes: h1's web1 and web2 move.
	b.cmd(CmdStartDrain, StartDrain{Host: "h1", At: b.tick(time.Minute), Actor: "token:ops"})
	b.cmd(CmdGrant, Grant{ID: "m8", Dest: "h3", BandwidthMiB: 200, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m8", Attempt: 1, State: MigSucceeded, DowntimeMs: 30, At: b.tick(time.Second), Actor: "host h1"})
	b.cmd(CmdGrant, Grant{ID: "m9", Dest: "h2", BandwidthMiB: 200, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m9", Attempt: 1, State: MigSucceeded, DowntimeMs: 31, At: b.tick(time.Second), Actor: "host h1"})
	b.cmd(CmdActivate, Activate{Host: "h1", At: b.tick(time.Second), Actor: "token:ops"})

	// Another leader; eight days later, a migration ends and the retention
	// forgets the ones finished more than a week before.
	b.cmd(CmdLeaderElected, LeaderElected{Leader: "h2", Version: LogVersion, At: b.tick(time.Second)})
	b.cmd(CmdEnqueue, Enqueue{VM: web1, Dest: "h1", At: b.tick(8 * 24 * time.Hour), Actor: "token:ops"})
	b.cmd(CmdGrant, Grant{ID: "m10", Dest: "h1", BandwidthMiB: 200, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m10", Attempt: 1, State: MigSucceeded, DowntimeMs: 25, At: b.tick(time.Second), Actor: "host h3"})
	return b
}
