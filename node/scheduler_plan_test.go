package node

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

var planT0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// planState is h1..h3 of cluster c1 (52 MiB/s per migration, 2 outgoing
// slots), with VMs of the given memory on h1.
func planState(t *testing.T, mem map[string]uint64) *fsm.State {
	t.Helper()
	s := fsm.NewState()
	index := uint64(0)
	apply := func(ct fsm.CommandType, p any) {
		t.Helper()
		data, err := fsm.Encode(ct, p)
		if err != nil {
			t.Fatal(err)
		}
		index++
		if _, err := fsm.ApplyTo(s, index, data); err != nil {
			t.Fatalf("command %s: %v", ct, err)
		}
	}
	apply(fsm.CmdLeaderElected, fsm.LeaderElected{Leader: "h1", Version: fsm.LogVersion, At: planT0})
	for _, h := range []string{"h1", "h2", "h3"} {
		apply(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: fsm.HostFacts{Name: h, Cluster: "c1", Arch: "x86_64", MemTotalMiB: 16384,
			MemFreeMiB: 8192, CPUs: 8, CPUsFree: 8, Networks: []fsm.Network{{Name: "vmnet"}}}, At: planT0})
	}
	var vms []fsm.VM
	for name, mib := range mem {
		vms = append(vms, fsm.VM{Name: name, UUID: uuidFor(name), MemoryMiB: mib, VCPUs: 1, State: fsm.VMRunning,
			NICs: []fsm.NIC{{Network: "vmnet"}}, Disks: []fsm.Disk{{Target: "vda", Cache: "none"}}})
	}
	apply(fsm.CmdSyncVMs, fsm.SyncVMs{Host: "h1", VMs: vms, At: planT0})
	apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "apart", Kind: fsm.AffinityApart, Hard: true, VMs: []string{"a", "b"}, At: planT0})
	apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "stay", Kind: fsm.AffinityHostMust, Hard: true, VMs: []string{"pinned"},
		Hosts: []string{"h1"}, At: planT0})
	return s
}

func uuidFor(name string) string {
	const hex = "0123456789abcdef"
	b := []byte("00000000-0000-4000-8000-000000000000")
	for i, j := 0, len(b)-1; i < len(name) && j >= 0; j-- {
		if b[j] != '-' {
			b[j] = hex[name[i]%16]
			i++
		}
	}
	return string(b)
}

// The plan: the moves in the order they start, two at a time (the
// outgoing slots), each taking memory/bandwidth; the pinned VM named
// with its rule; a and b apart; the state untouched.
func TestPlanDrain(t *testing.T) {
	s := planState(t, map[string]uint64{"a": 1040, "b": 520, "c": 520, "pinned": 256})
	before := len(s.Queue)
	p, err := PlanDrain(s, "h1", planT0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Queue) != before || s.Drains["h1"] != nil || s.Hosts["h1"].State != fsm.HostUp {
		t.Fatal("planning changed the state")
	}
	if len(p.Moves) != 3 || len(p.Unmovable) != 1 {
		t.Fatalf("plan %+v: want 3 moves and pinned unmovable", p)
	}
	if u := p.Unmovable[0]; u.VM != "pinned" || !strings.Contains(u.Reason, "affinity: rule stay (hard host-must)") {
		t.Fatalf("unmovable %+v: want pinned, blocked by rule stay", u)
	}
	dest := map[string]string{}
	for _, m := range p.Moves {
		dest[m.VM] = m.Dest
		want := float64(m.MemoryMiB) / 52
		if m.BandwidthMiB != 52 || m.Seconds != want || m.Reason == "" {
			t.Errorf("move %+v: want 52 MiB/s, %.1f s and a reason", m, want)
		}
	}
	if dest["a"] == dest["b"] || dest["a"] == "" || dest["b"] == "" {
		t.Fatalf("destinations %v: a and b must be apart", dest)
	}
	// Two outgoing slots: a (20 s) and b (10 s) start at once, c when b ends.
	if p.Moves[0].StartSeconds != 0 || p.Moves[1].StartSeconds != 0 || p.Moves[2].VM != "c" || p.Moves[2].StartSeconds != 10 {
		t.Fatalf("order %+v: want a and b at 0 s, c at 10 s", p.Moves)
	}
	if p.TotalSeconds != 20 || p.NetMiB != 1000 || p.LimitSeconds != 2.08 {
		t.Fatalf("total %.2f s, limit %.2f s at %d MiB/s; want 20, 2.08 at 1000", p.TotalSeconds, p.LimitSeconds, p.NetMiB)
	}
}

// A host that cannot drain is refused the way the drain would be.
func TestPlanDrainRefusals(t *testing.T) {
	s := planState(t, map[string]uint64{"a": 100, "b": 100, "pinned": 100})
	s.Hosts["h2"].State = fsm.HostMaintenance
	if _, err := PlanDrain(s, "h2", planT0); !errors.Is(err, fsm.ErrRejected) {
		t.Fatalf("plan of a host in Maintenance: %v, want rejected", err)
	}
}

// A VM whose last migration sampled a dirty rate is predicted with the
// pre-copy passes that rate makes, not one pass; one that moved before
// takes what it took then, scaled to the bandwidth; a migration of the drain
// already running is planned from its last sample; and the next move
// waits for the slot it holds.
func TestPlanDrainUsesDirtyRateAndRunningMigrations(t *testing.T) {
	s := planState(t, map[string]uint64{"a": 1040, "b": 520, "c": 520, "pinned": 256})
	s.Seq++
	s.Migrations["m100"] = &fsm.Migration{ID: "m100", VM: "a", VMUUID: uuidFor("a"), Source: "h2", Dest: "h1", Cluster: "c1",
		State: fsm.MigSucceeded, Attempt: 1, EndedAt: planT0.Add(-time.Hour),
		Progress: fsm.Progress{DirtyRateBps: 26 << 20}}
	// b moved before: 4 s at 26 MiB/s, so 2 s at the drain's 52.
	s.Seq++
	s.Migrations["m101"] = &fsm.Migration{ID: "m101", VM: "b", VMUUID: uuidFor("b"), Source: "h2", Dest: "h1", Cluster: "c1",
		State: fsm.MigSucceeded, Attempt: 1, GrantedMiB: 26, StartedAt: planT0.Add(-time.Hour), EndedAt: planT0.Add(-time.Hour + 4*time.Second)}
	p, err := PlanDrain(s, "h1", planT0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Moves {
		if m.VM == "b" && m.Seconds != 2 {
			t.Errorf("b predicted %.2f s, want 2 (its last move, 4 s at half the bandwidth)", m.Seconds)
		}
	}
	var a *float64
	for _, m := range p.Moves {
		if m.VM == "a" {
			a = &m.Seconds
			if m.DirtyMiB != 26 {
				t.Errorf("move of a used dirty %.1f MiB/s, want 26", m.DirtyMiB)
			}
		}
	}
	// 20 s for the first pass, then half of it per pass at r = 0.5.
	if a == nil || *a < 38 || *a > 41 {
		t.Fatalf("a predicted %v s, want about 40 (20 s + 10 + 5 + ...): %+v", a, p.Moves)
	}

	// b runs already with 104 MiB left at 52 MiB/s: 2 s; both slots of h1
	// are taken until then by a and b, c starts when b ends.
	s = planState(t, map[string]uint64{"a": 1040, "b": 520, "c": 520, "pinned": 256})
	for _, vm := range []string{"a", "b"} {
		index := uint64(1000)
		apply := func(ct fsm.CommandType, pl any) any {
			data, err := fsm.Encode(ct, pl)
			if err != nil {
				t.Fatal(err)
			}
			index++
			r, err := fsm.ApplyTo(s, index, data)
			if err != nil {
				t.Fatalf("%s: %v", ct, err)
			}
			return r
		}
		id := apply(fsm.CmdEnqueue, fsm.Enqueue{VM: uuidFor(vm), Dest: map[string]string{"a": "h2", "b": "h3"}[vm], At: planT0}).(string)
		apply(fsm.CmdGrant, fsm.Grant{ID: id, Dest: s.Migrations[id].Dest, BandwidthMiB: 52, At: planT0})
		if vm == "b" {
			s.Migrations[id].Progress = fsm.Progress{TotalBytes: 520 << 20, RemainingBytes: 104 << 20, MiBps: 52}
		}
	}
	p, err = PlanDrain(s, "h1", planT0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range p.Moves {
		got[m.VM] = fmt.Sprintf("start %.0f, %.0f s, running %v", m.StartSeconds, m.Seconds, m.Running)
	}
	want := map[string]string{"a": "start 0, 20 s, running true", "b": "start 0, 2 s, running true", "c": "start 2, 10 s, running false"}
	if !maps.Equal(got, want) {
		t.Fatalf("moves %v, want %v", got, want)
	}
	if p.TotalSeconds != 20 {
		t.Fatalf("total %.1f s, want 20 (a ends last)", p.TotalSeconds)
	}
}
