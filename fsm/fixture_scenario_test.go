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

// buildScenario returns the fixture log of this version.
func buildScenario() *scenario {
	b := &scenario{at: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	// What a bootstrapping Raft writes before any command: its
	// configuration and the new leader's no-op. Apply ignores both.
	b.add(raft.LogConfiguration, []byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0x90})
	b.add(raft.LogNoop, nil)

	for i := 1; i <= 4; i++ {
		cl := "c1"
		if i == 4 {
			cl = "c2" // another cluster: never a destination for c1's VMs
		}
		b.cmd(CmdUpsertHost, UpsertHost{Facts: fixtureHost(i, cl, 12288)})
	}
	b.cmd(CmdSetCluster, SetCluster{Cluster: Cluster{Name: "c1", MaxOutgoing: 2, MaxIncoming: 1, MaxConcurrent: 3,
		BandwidthMode: BandwidthAuto, BandwidthMiB: 52, MigrationNetMiB: 200, Policy: "minimal-downtime",
		RequiredNetworks: []string{"vmnet"}, CPUBaseline: []string{"sse4_2"}}})
	// Inventories. web1 has no UUID: v1 keyed VMs by name and accepted that.
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{
		fixtureVM("db1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c01", 2048),
		fixtureVM("db2", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c02", 2048),
		fixtureVM("web1", "", 1024),
		fixtureVM("web2", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c04", 1024),
	}})
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{fixtureVM("cache1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c05", 512)}})
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h4", VMs: []VM{fixtureVM("other1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c06", 512)}})

	// m1: a placed migration with progress samples, then success.
	b.cmd(CmdEnqueue, Enqueue{VM: "db1", At: b.tick(time.Second)})
	b.cmd(CmdGrant, Grant{ID: "m1", Dest: "h2", BandwidthMiB: 200, Reason: "h2: 11776 MiB free after incoming, 1 VMs, 0 incoming migrations; best of 2 passing hosts", At: b.tick(50 * time.Millisecond)})
	for i, pct := range []float64{12.5, 48, 91} {
		b.cmd(CmdProgress, ProgressUpdate{ID: "m1", Attempt: 1, Progress: Progress{Percent: pct, ElapsedMs: int64(400 * (i + 1)),
			TotalBytes: 2 << 30, ProcessedBytes: uint64(pct / 100 * float64(2<<30)), RemainingBytes: uint64((100 - pct) / 100 * float64(2<<30)),
			MiBps: 198.5, DirtyRateBps: 4 << 20, Iteration: i + 1, MaxDowntimeMs: 100}})
	}
	// m2 is queued behind m1 (h2 has one incoming slot); a second
	// migration of db1 is refused: the VM is held.
	b.cmd(CmdEnqueue, Enqueue{VM: "db2", Dest: "h2", Policy: "post-copy", BandwidthMiB: 100, At: b.tick(time.Second)})
	b.cmd(CmdEnqueue, Enqueue{VM: "db1", At: b.tick(time.Millisecond)})
	// A stale grant over the incoming slot limit: refused in Apply.
	b.cmd(CmdGrant, Grant{ID: "m2", Dest: "h2", BandwidthMiB: 100, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m1", Attempt: 1, State: MigSucceeded, DowntimeMs: 84, At: b.tick(2 * time.Second)})
	// The switch-over's inventories: h2 now reports db1, h1 no longer does.
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{fixtureVM("cache1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c05", 512),
		fixtureVM("db1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c01", 2048)}})
	b.cmd(CmdGrant, Grant{ID: "m2", Dest: "h2", BandwidthMiB: 100, Reason: "h2: pinned by the user; all 13 checks pass", At: b.tick(10 * time.Millisecond)})
	b.cmd(CmdProgress, ProgressUpdate{ID: "m2", Attempt: 1, Progress: Progress{Percent: 70, ElapsedMs: 5000, Iteration: 4,
		PostCopy: true, PostCopyAtMs: 4200, ThrottlePercent: 20, Actions: []string{"downtime 150ms", "post-copy"}}})

	// m3: fails on h3 and is retried on another host, where it succeeds
	// in an auto-bandwidth cluster with a reshare in the grant.
	b.cmd(CmdEnqueue, Enqueue{VM: "web1", At: b.tick(time.Second)})
	b.cmd(CmdGrant, Grant{ID: "m3", Dest: "h3", BandwidthMiB: 100, Reason: "h3: best of 1 passing hosts", At: b.tick(5 * time.Millisecond),
		Reshare: []Share{{ID: "m2", BandwidthMiB: 100}}})
	b.cmd(CmdFinish, Finish{ID: "m3", Attempt: 1, State: MigFailed, Reason: "start migration of web1 to h3: destination refused", Retry: true, At: b.tick(time.Second)})
	// A late sample of attempt 1 is refused.
	b.cmd(CmdProgress, ProgressUpdate{ID: "m3", Attempt: 1, Progress: Progress{Percent: 5}})
	b.cmd(CmdFinish, Finish{ID: "m2", Attempt: 1, State: MigSucceeded, DowntimeMs: 12, At: b.tick(time.Second)})
	b.cmd(CmdReshare, Reshare{Shares: []Share{{ID: "m2", BandwidthMiB: 200}}})
	// m3's retry waits: placement only had h3, now tried. Cancel it.
	b.cmd(CmdCancel, Cancel{ID: "m3", At: b.tick(time.Second)})

	// A host fails and comes back: its VMs are unknown meanwhile.
	b.cmd(CmdSetHostState, SetHostState{Host: "h3", State: HostDown, Reason: "gossip: host failed (no answer to probes)"})
	b.cmd(CmdSetHostState, SetHostState{Host: "h3", State: HostUp})

	// A drain of h2 (cache1, db1, db2 in name order: m4, m5, m6): cache1
	// moves, db1 is cancelled while running, and the drain is cancelled
	// with db2 still queued. The snapshot is taken mid-drain.
	b.cmd(CmdStartDrain, StartDrain{Host: "h2", Reason: "operator", At: b.tick(time.Minute)})
	b.cmd(CmdGrant, Grant{ID: "m4", Dest: "h3", BandwidthMiB: 100, Reason: "h3: best of 2 passing hosts", At: b.tick(5 * time.Millisecond)})
	b.cmd(CmdGrant, Grant{ID: "m5", Dest: "h1", BandwidthMiB: 100, Reason: "h1: best of 2 passing hosts", At: b.tick(5 * time.Millisecond),
		Reshare: []Share{{ID: "m4", BandwidthMiB: 100}}})
	b.snapAt = uint64(len(b.entries))
	b.cmd(CmdProgress, ProgressUpdate{ID: "m4", Attempt: 1, Progress: Progress{Percent: 33, ElapsedMs: 900, Iteration: 1}})
	b.cmd(CmdCancel, Cancel{ID: "m5", At: b.tick(time.Second)})
	b.cmd(CmdFinish, Finish{ID: "m5", Attempt: 1, State: MigCancelled, Reason: "cancelled by operator: job aborted, VM stays on h2", At: b.tick(time.Second)})
	b.cmd(CmdFinish, Finish{ID: "m4", Attempt: 1, State: MigSucceeded, DowntimeMs: 40, At: b.tick(time.Second)})
	b.cmd(CmdEndDrain, EndDrain{Host: "h2", State: DrainCancelled, At: b.tick(time.Second)})
	b.cmd(CmdActivate, Activate{Host: "h2"}) // refused: the cancel already made it Up
	// h3 reports cache1, which it now runs, and db1, which the state
	// places on h2, alive: v1 kept h2's record.
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h3", VMs: []VM{fixtureVM("cache1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c05", 512),
		fixtureVM("db1", "0b6a9d8e-64a3-5d7e-9c11-2f0e6b7a1c01", 2048)}})

	// A leave of h4, alone in cluster c2. v1's Apply checked only the
	// slots of a grant, so a grant to h1 in another cluster was accepted
	// (issue 9); the source then failed it, without an attempt number.
	b.cmd(CmdStartDrain, StartDrain{Host: "h4", Reason: "leave", At: b.tick(time.Minute)})
	b.cmd(CmdGrant, Grant{ID: "m7", Dest: "h1", At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m7", State: MigFailed, Reason: "start migration of other1 to h1: refused", At: b.tick(time.Millisecond)})
	// The operator activates h4, shuts its VM down, and it leaves.
	b.cmd(CmdActivate, Activate{Host: "h4"})
	b.cmd(CmdSyncVMs, SyncVMs{Host: "h4", VMs: nil})
	b.cmd(CmdSetHostState, SetHostState{Host: "h4", State: HostLeft, Reason: "left the mesh"})
	b.cmd(CmdRemoveHost, RemoveHost{Host: "h4"})
	b.cmd(CmdRemoveHost, RemoveHost{Host: "h4"}) // refused: gone

	// Junk that a v1 leader let into the log (validation came later):
	// Apply refused it, on every replica alike.
	b.add(raft.LogCommand, append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":"db1","evil":1}`)...))
	b.add(raft.LogCommand, []byte("GET / HTTP/1.1\r\n"))
	b.add(raft.LogCommand, nil)

	// A drain that completes: h1's web1 and web2 move, the host goes to
	// Maintenance, and activate returns it with the drain's moves.
	b.cmd(CmdStartDrain, StartDrain{Host: "h1", At: b.tick(time.Minute)})
	b.cmd(CmdGrant, Grant{ID: "m8", Dest: "h3", BandwidthMiB: 200, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m8", Attempt: 1, State: MigSucceeded, DowntimeMs: 30, At: b.tick(time.Second)})
	b.cmd(CmdGrant, Grant{ID: "m9", Dest: "h2", BandwidthMiB: 200, At: b.tick(time.Millisecond)})
	b.cmd(CmdFinish, Finish{ID: "m9", Attempt: 1, State: MigSucceeded, DowntimeMs: 31, At: b.tick(time.Second)})
	b.cmd(CmdActivate, Activate{Host: "h1"})
	return b
}
