package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// base is h1 running vm1, and h2 and h3 able to take it.
func base() *builder {
	return newBuilder().host("h1").host("h2").host("h3").vm("vm1", "h1")
}

func TestCheckEachPassesAndFails(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(b *builder)
		vm     string // default vm1
		dest   string // default h2
		check  string
		ok     bool
		inMsgs []string
	}{
		{name: "baseline memory", check: CheckMemory, ok: true, inMsgs: []string{"h2 has 32768 MiB for it (32768 MiB free, plus 0 held for and minus 0 of migrations headed there), vm vm1 needs 2048 MiB"}},
		{name: "vm missing", vm: "nope", check: CheckVMExists, inMsgs: []string{"vm nope does not exist"}},
		{name: "vm missing, later checks not checked", vm: "nope", check: CheckMemory, inMsgs: []string{"not checked", "nope"}},
		{name: "vm paused", setup: func(b *builder) { b.st.VMs["vm1"].State = fsm.VMPaused }, check: CheckVMRunning, inMsgs: []string{"vm1 is paused"}},
		{name: "vm shut off", setup: func(b *builder) { b.st.VMs["vm1"].State = fsm.VMShutoff }, check: CheckVMRunning, inMsgs: []string{"shutoff"}},
		{name: "already migrating", setup: func(b *builder) { b.st.VMs["vm1"].Migration = "m9" }, check: CheckNotMigrating, inMsgs: []string{"held by migration m9"}},
		{name: "passthrough device", setup: func(b *builder) { b.st.VMs["vm1"].HostDevices = []string{"pci 0000:03:00.0"} },
			check: CheckMigratable, inMsgs: []string{"vm1 has passthrough host device pci 0000:03:00.0"}},
		{name: "pinned by an operator", setup: func(b *builder) {
			no := false
			b.st.VMSettings["vm1"] = &fsm.VMSettings{VM: "vm1", Migratable: &no, By: "token:ops"}
		}, check: CheckMigratable, inMsgs: []string{"vm1 was set not migratable by token:ops"}},
		{name: "migratable", check: CheckMigratable, ok: true, inMsgs: []string{"no host devices and is not pinned"}},
		{name: "split brain", setup: func(b *builder) {
			b.st.Alarms[fsm.AlarmKey(fsm.AlarmSplitBrain, "vm1")] = &fsm.Alarm{Kind: fsm.AlarmSplitBrain, VMUUID: "vm1", VM: "vm1",
				Hosts: []string{"h1", "h3"}, Message: "vm vm1 runs on h1 and h3 at once"}
		}, check: CheckSplitBrain, inMsgs: []string{"runs on h1 and h3"}},
		{name: "one copy", check: CheckSplitBrain, ok: true, inMsgs: []string{"vm vm1 runs on one host"}},
		{name: "same host", dest: "h1", check: CheckDistinctHosts, inMsgs: []string{"vm1 already runs on h1"}},
		{name: "other cluster", setup: func(b *builder) { b.host("h2", inCluster("c2")) }, check: CheckSameCluster, inMsgs: []string{"h1 is in cluster c1", "h2 in cluster c2"}},
		{name: "source down", setup: func(b *builder) { setState(b, "h1", fsm.HostDown, "no heartbeat") }, check: CheckSourceUp, inMsgs: []string{"h1 is Down (no heartbeat)"}},
		{name: "source draining", setup: func(b *builder) { setState(b, "h1", fsm.HostPreparingForMaintenance, "operator") }, check: CheckSourceUp, ok: true, inMsgs: []string{"PreparingForMaintenance", "draining"}},
		{name: "source maintenance", setup: func(b *builder) { setState(b, "h1", fsm.HostMaintenance, "") }, check: CheckSourceUp, inMsgs: []string{"h1 is Maintenance"}},
		{name: "dest preparing", setup: func(b *builder) { setState(b, "h2", fsm.HostPreparingForMaintenance, "operator") }, check: CheckDestUp, inMsgs: []string{"h2 is PreparingForMaintenance (operator)"}},
		{name: "dest maintenance", setup: func(b *builder) { setState(b, "h2", fsm.HostMaintenance, "kernel update") }, check: CheckDestUp, inMsgs: []string{"h2 is Maintenance (kernel update)"}},
		{name: "dest down", setup: func(b *builder) { setState(b, "h2", fsm.HostDown, "no heartbeat for 30s") }, check: CheckDestUp, inMsgs: []string{"h2 is Down (no heartbeat for 30s)"}},
		{name: "dest non-operational", setup: func(b *builder) { setState(b, "h2", fsm.HostNonOperational, "lacks network prod") }, check: CheckDestUp, inMsgs: []string{"NonOperational (lacks network prod)"}},
		{name: "dest left", setup: func(b *builder) { setState(b, "h2", fsm.HostLeft, "") }, check: CheckDestUp, inMsgs: []string{"h2 is Left"}},
		{name: "dest unknown", dest: "h9", check: CheckDestUp, inMsgs: []string{`"h9" is unknown`}},
		{name: "dest up", check: CheckDestUp, ok: true, inMsgs: []string{"h2 is Up"}},
		{name: "missing network", setup: func(b *builder) {
			b.st.VMs["vm1"].NICs = append(b.st.VMs["vm1"].NICs, fsm.NIC{Network: "backup"})
		}, check: CheckNetworks, inMsgs: []string{"h2 lacks backup needed by vm vm1", "it has: ovirtmgmt, prod VLAN 100"}},
		{name: "missing VLAN", setup: func(b *builder) { b.st.VMs["vm1"].NICs[0].VLAN = 200 }, check: CheckNetworks, inMsgs: []string{"lacks prod VLAN 200"}},
		{name: "networks present", check: CheckNetworks, ok: true, inMsgs: []string{"h2 has prod VLAN 100"}},
		{name: "missing storage domain", setup: func(b *builder) { b.st.VMs["vm1"].Disks[0].StorageDomain = "nfs2" }, check: CheckStorage, inMsgs: []string{"h2 does not see storage domain nfs2 (disk vda)"}},
		{name: "local disk copied", setup: func(b *builder) {
			b.st.VMs["vm1"].Disks = append(b.st.VMs["vm1"].Disks, fsm.Disk{Target: "vdb", Cache: "none"})
		}, check: CheckStorage, ok: true, inMsgs: []string{"h2 sees nfs1", "local disk vdb will be copied live"}},
		{name: "memory short", setup: func(b *builder) { b.host("h2", memFree(1024)) }, check: CheckMemory, inMsgs: []string{"h2 has 1024 MiB for it (1024 MiB free, plus 0 held for and minus 0 of migrations headed there), vm vm1 needs 2048 MiB"}},
		{name: "memory exactly enough", setup: func(b *builder) { b.host("h2", memFree(2048)) }, check: CheckMemory, ok: true},
		{name: "memory short after incoming", setup: func(b *builder) {
			b.host("h2", memFree(5120)).vm("vm2", "h3", func(v *fsm.VM) { v.MemoryMiB = 4096 })
			b.running("vm2", "h2")
		}, check: CheckMemory, inMsgs: []string{"h2 has 1024 MiB for it (5120 MiB free, plus 0 held for and minus 4096 of migrations headed there), vm vm1 needs 2048 MiB"}},
		{name: "memory reserved for a running migration counted once", setup: func(b *builder) {
			// Issue 10: h2's hypervisor holds 1536 MiB for vm2, already
			// out of its 2048 MiB free; vm1 still fits.
			b.host("h2", memFree(2048), func(h *fsm.Host) { h.MemReservedMiB = 1536 }).vm("vm2", "h3", func(v *fsm.VM) { v.MemoryMiB = 1536 })
			b.running("vm2", "h2")
		}, check: CheckMemory, ok: true, inMsgs: []string{"h2 has 2048 MiB for it (2048 MiB free, plus 1536 held for and minus 1536 of migrations headed there)"}},
		{name: "memory: a reservation the state does not know is not added back", setup: func(b *builder) {
			b.host("h2", memFree(1024), func(h *fsm.Host) { h.MemReservedMiB = 8192 })
		}, check: CheckMemory, inMsgs: []string{"h2 has 1024 MiB for it (1024 MiB free, plus 0 held for and minus 0 of"}},
		{name: "memory: queued pinned counts for a new request", setup: func(b *builder) {
			b.host("h2", memFree(5120)).vm("vm2", "h3", func(v *fsm.VM) { v.MemoryMiB = 4096 })
			b.queue("vm2", pinned("h2"))
		}, check: CheckMemory, inMsgs: []string{"minus 4096 of migrations headed there"}},
		{name: "too many vCPUs", setup: func(b *builder) { b.st.VMs["vm1"].VCPUs = 32 }, check: CheckCPU, inMsgs: []string{"h2 has 16 CPUs (8 free), vm vm1 needs 32 vCPUs"}},
		{name: "vCPUs beyond free allowed", setup: func(b *builder) { b.st.VMs["vm1"].VCPUs = 12 }, check: CheckCPU, ok: true, inMsgs: []string{"(8 free)"}},
		{name: "arch differs", setup: func(b *builder) { b.st.Hosts["h2"].Arch = "aarch64" }, check: CheckCPUModel, inMsgs: []string{`arch "x86_64" on h1 but "aarch64" on h2`}},
		{name: "cpu flag missing", setup: func(b *builder) { b.st.VMs["vm1"].CPUFlags = []string{"vmx", "avx512f"} }, check: CheckCPUModel, inMsgs: []string{"h2 lacks CPU flag avx512f required by vm vm1"}},
		{name: "cpu model differs", setup: func(b *builder) {
			b.st.VMs["vm1"].CPUModel = "Skylake"
			b.st.Hosts["h2"].CPUModel = "Haswell"
		}, check: CheckCPUModel, inMsgs: []string{"vm vm1 uses CPU model Skylake, which h2 (Haswell) cannot run"}},
		{name: "cpu model listed usable", setup: func(b *builder) {
			b.st.VMs["vm1"].CPUModel = "Skylake"
			b.st.Hosts["h2"].CPUModel = "Icelake"
			b.st.Hosts["h2"].CPUModels = []string{"Haswell", "Skylake"}
		}, check: CheckCPUModel, ok: true, inMsgs: []string{"model Skylake"}},
		{name: "default guest model between identical hosts", setup: func(b *builder) {
			b.st.VMs["vm1"].CPUModel = "qemu64"
		}, check: CheckCPUModel, ok: true},
		{name: "cpu model same", setup: func(b *builder) { b.st.VMs["vm1"].CPUModel = "Skylake" }, check: CheckCPUModel, ok: true, inMsgs: []string{"model Skylake"}},
		{name: "cache writeback", setup: func(b *builder) { b.st.VMs["vm1"].Disks[0].Cache = "writeback" }, check: CheckCacheMode, inMsgs: []string{"vda (writeback)"}},
		{name: "cache unsafe", setup: func(b *builder) { b.st.VMs["vm1"].Disks[0].Cache = "unsafe" }, check: CheckCacheMode, inMsgs: []string{"vda (unsafe)"}},
		{name: "cache default", setup: func(b *builder) { b.st.VMs["vm1"].Disks[0].Cache = "" }, check: CheckCacheMode, inMsgs: []string{"vda (default, writeback)"}},
		{name: "cache directsync", setup: func(b *builder) { b.st.VMs["vm1"].Disks[0].Cache = "directsync" }, check: CheckCacheMode, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			if tc.setup != nil {
				tc.setup(b)
			}
			vm, dest := or(tc.vm, "vm1"), or(tc.dest, "h2")
			rs := CheckMigration(b.st, vm, dest)
			r := result(t, rs, tc.check)
			if r.OK != tc.ok {
				t.Fatalf("%s OK = %v, want %v: %s", tc.check, r.OK, tc.ok, r.Message)
			}
			for _, s := range tc.inMsgs {
				if !strings.Contains(r.Message, s) {
					t.Errorf("%s message %q lacks %q", tc.check, r.Message, s)
				}
			}
			err := Refusal(vm, dest, rs)
			if tc.ok {
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Refusal = %v, want ErrRefused", err)
			}
			if want := tc.check + ": " + r.Message; !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not name %q", err, want)
			}
		})
	}
}

func setState(b *builder, host string, s fsm.HostState, reason string) {
	b.st.Hosts[host].State, b.st.Hosts[host].StateReason = s, reason
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestCheckAllInFixedOrder(t *testing.T) {
	b := base()
	rs := CheckMigration(b.st, "vm1", "h2")
	var names []string
	for _, r := range rs {
		if !r.OK {
			t.Errorf("healthy cluster fails %s", r)
		}
		names = append(names, r.Name)
	}
	want := []string{"vm-exists", "vm-running", "not-migrating", "migratable", "split-brain", "distinct-hosts", "same-cluster", "source-up",
		"dest-up", "networks", "storage", "memory", "cpu", "cpu-model", "cache-mode", "affinity"}
	if !slices.Equal(names, want) {
		t.Fatalf("checks %v, want %v", names, want)
	}
	if err := Refusal("vm1", "h2", rs); err != nil {
		t.Fatalf("Refusal = %v, want nil", err)
	}
}

func TestCheckRefusalListsEveryFailure(t *testing.T) {
	b := base()
	b.st.VMs["vm1"].Disks[0].Cache = "writeback"
	b.host("h2", memFree(100))
	err := Refusal("vm1", "h2", CheckMigration(b.st, "vm1", "h2"))
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Refusal = %v, want *RefusedError", err)
	}
	if re.VM != "vm1" || re.Dest != "h2" || len(re.Failed) != 2 ||
		re.Failed[0].Name != CheckMemory || re.Failed[1].Name != CheckCacheMode {
		t.Fatalf("refusal %+v, want memory and cache-mode for vm1 to h2", re)
	}
	if !strings.HasPrefix(err.Error(), "migration of vm vm1 to host h2 refused: memory: ") {
		t.Errorf("refusal text %q", err)
	}
}

func TestCheckQueuedIgnoresOwnMigration(t *testing.T) {
	b := base()
	b.host("h2", memFree(4096)).vm("vm2", "h3")
	own := b.queue("vm1", pinned("h2"))
	b.queue("vm2", pinned("h2")) // behind vm1: does not count against it
	m := b.st.Migrations[own]

	rs := CheckQueued(b.st, m, "h2")
	if err := Refusal("vm1", "h2", rs); err != nil {
		t.Fatalf("queued migration refused by itself: %v", err)
	}
	if got := result(t, rs, CheckMemory).Message; !strings.Contains(got, "4096 MiB for it (4096 MiB free, plus 0 held for and minus 0 of") {
		t.Errorf("memory message %q counts own or later migrations", got)
	}
	// The same VM checked as a new request is held, and sees both pinned as incoming.
	rs = CheckMigration(b.st, "vm1", "h2")
	if r := result(t, rs, CheckNotMigrating); r.OK || !strings.Contains(r.Message, own) {
		t.Errorf("not-migrating = %+v, want failure naming %s", r, own)
	}
	if r := result(t, rs, CheckMemory); r.OK || !strings.Contains(r.Message, "minus 4096 of migrations headed there") {
		t.Errorf("memory = %+v, want both queued counted", r)
	}
}
