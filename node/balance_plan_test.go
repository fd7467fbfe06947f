package node

import (
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// balanceFixture builds cluster c1 of hosts h1..h4 (16 GiB, 16 CPUs each)
// with balancing on: h1 runs vms VMs of 1 GiB (v0, v1, ...), the others
// none, and apply writes further commands.
type balanceFixture struct {
	t     *testing.T
	s     *fsm.State
	index uint64
}

func newBalanceFixture(t *testing.T, vms int, set func(*fsm.Cluster)) *balanceFixture {
	t.Helper()
	f := &balanceFixture{t: t, s: fsm.NewState()}
	f.apply(fsm.CmdLeaderElected, fsm.LeaderElected{Leader: "h1", Version: fsm.LogVersion, At: planT0})
	for _, h := range []string{"h1", "h2", "h3", "h4"} {
		f.apply(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: fsm.HostFacts{Name: h, Cluster: "c1", Arch: "x86_64", MemTotalMiB: 16384,
			MemFreeMiB: 16384, CPUs: 16, CPUsFree: 16, Networks: []fsm.Network{{Name: "vmnet"}}}, At: planT0})
	}
	var list []fsm.VM
	for i := range vms {
		name := "v" + string(rune('a'+i))
		list = append(list, fsm.VM{Name: name, UUID: uuidFor(name), MemoryMiB: 1024, VCPUs: 1, State: fsm.VMRunning,
			NICs: []fsm.NIC{{Network: "vmnet"}}, Disks: []fsm.Disk{{Target: "vda", Cache: "none"}}})
	}
	f.apply(fsm.CmdSyncVMs, fsm.SyncVMs{Host: "h1", VMs: list, At: planT0})
	f.s.Hosts["h1"].MemFreeMiB -= uint64(vms) * 1024
	cl := fsm.DefaultCluster("c1")
	cl.Balance = fsm.BalanceMemory
	cl.MaxConcurrent = 20
	if set != nil {
		set(&cl)
	}
	f.apply(fsm.CmdSetCluster, fsm.SetCluster{Cluster: cl, At: planT0})
	return f
}

func (f *balanceFixture) apply(ct fsm.CommandType, p any) any {
	f.t.Helper()
	data, err := fsm.Encode(ct, p)
	if err != nil {
		f.t.Fatal(err)
	}
	f.index++
	r, err := fsm.ApplyTo(f.s, f.index, data)
	if err != nil {
		f.t.Fatalf("command %s: %v", ct, err)
	}
	return r
}

// run carries out a plan's moves as the leader would: queue, grant,
// succeed, the hypervisors' free memory following the VM.
func (f *balanceFixture) run(p BalancePlan, at time.Time) {
	f.t.Helper()
	for _, mv := range p.Moves {
		id := f.apply(fsm.CmdEnqueue, fsm.Enqueue{VM: mv.VMKey, Dest: mv.To, At: at, Actor: BalanceActor}).(string)
		f.apply(fsm.CmdGrant, fsm.Grant{ID: id, Dest: mv.To, BandwidthMiB: 52, At: at})
		f.apply(fsm.CmdFinish, fsm.Finish{ID: id, Attempt: 1, State: fsm.MigSucceeded, At: at})
		vm := f.s.VMs[mv.VMKey]
		f.s.Hosts[mv.From].MemFreeMiB += vm.MemoryMiB
		f.s.Hosts[mv.To].MemFreeMiB -= vm.MemoryMiB
	}
}

// A skewed cluster ends within the threshold in one pass, each move
// narrowing the spread, and the next pass moves nothing: no VM ping-pongs.
func TestBalanceConverges(t *testing.T) {
	f := newBalanceFixture(t, 12, nil) // h1 at 75 %, the others at 0
	p := PlanBalance(f.s, "c1", planT0.Add(time.Minute))
	if p.Spread != 75 || p.After > 10 {
		t.Fatalf("spread %.1f → %.1f, want 75 → ≤ 10; plan %+v", p.Spread, p.After, p)
	}
	if len(p.Moves) != 9 { // 3 GiB to each of h2..h4: h1 at 18.75 %, the others 18.75 %
		t.Fatalf("%d moves, want 9: %s", len(p.Moves), planNote(p))
	}
	seen := map[string]bool{}
	for _, mv := range p.Moves {
		if seen[mv.VMKey] || mv.From != "h1" || mv.To == "h1" {
			t.Fatalf("bad move %+v in %s", mv, planNote(p))
		}
		seen[mv.VMKey] = true
	}
	f.run(p, planT0.Add(2*time.Minute))
	again := PlanBalance(f.s, "c1", planT0.Add(3*time.Minute))
	if len(again.Moves) != 0 || again.Idle != "within the threshold" {
		t.Fatalf("second pass: %s", planNote(again))
	}
}

// Every rule kind, the migratable flag and the hold keep their VM, and
// the plan names why.
func TestBalanceObeysRulesFlagsAndHold(t *testing.T) {
	f := newBalanceFixture(t, 6, func(c *fsm.Cluster) { c.BalanceThreshold = 1 })
	no := false
	f.apply(fsm.CmdSetVM, fsm.SetVM{VM: "va", Migratable: &no, At: planT0})
	f.apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "stay", Kind: fsm.AffinityHostMust, Hard: true,
		VMs: []string{uuidFor("vb")}, Hosts: []string{"h1"}, At: planT0})
	f.apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "likes-h1", Kind: fsm.AffinityHostPrefer,
		VMs: []string{uuidFor("vc")}, Hosts: []string{"h1"}, At: planT0})
	f.apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "pair", Kind: fsm.AffinityTogether, Hard: true,
		VMs: []string{uuidFor("vd"), uuidFor("ve")}, At: planT0})
	// vf moved to h1 a minute ago.
	f.s.VMs[uuidFor("vf")].Host = "h2"
	id := f.apply(fsm.CmdEnqueue, fsm.Enqueue{VM: uuidFor("vf"), Dest: "h1", At: planT0, Actor: "anonymous"}).(string)
	f.apply(fsm.CmdGrant, fsm.Grant{ID: id, Dest: "h1", BandwidthMiB: 52, At: planT0})
	f.apply(fsm.CmdFinish, fsm.Finish{ID: id, Attempt: 1, State: fsm.MigSucceeded, At: planT0})

	p := PlanBalance(f.s, "c1", planT0.Add(time.Minute))
	if len(p.Moves) != 0 {
		t.Fatalf("moved %+v; every VM is kept: %s", p.Moves, planNote(p))
	}
	want := map[string]string{
		"va": "migratable: ",
		"vb": "rule stay (hard host-must)",
		"vc": "rule likes-h1 (soft host-prefer)",
		"vd": "rule pair (hard vm-together)",
		"ve": "rule pair (hard vm-together)",
		"vf": "hold: moved at 2026-11-27T12:00:00Z, stays until 2026-11-27T13:00:00Z",
	}
	got := map[string]string{}
	for _, r := range p.Refused {
		got[r.VM] = r.Reason
	}
	for vm, w := range want {
		if !strings.Contains(got[vm], w) {
			t.Errorf("vm %s refused for %q, want it to say %q", vm, got[vm], w)
		}
	}
	if !strings.Contains(planNote(p), "vm vb stays on h1") {
		t.Errorf("note %q does not name the refusals", planNote(p))
	}
	// An hour later the hold is over: vf moves.
	p = PlanBalance(f.s, "c1", planT0.Add(time.Hour+time.Minute))
	if len(p.Moves) != 1 || p.Moves[0].VM != "vf" {
		t.Fatalf("after the hold: %s", planNote(p))
	}
}

// A hard vm-apart rule holds within one pass: its two VMs never land on
// one host, however empty it is.
func TestBalanceKeepsApart(t *testing.T) {
	f := newBalanceFixture(t, 12, func(c *fsm.Cluster) { c.BalanceThreshold = 5 })
	f.apply(fsm.CmdCreateAffinity, fsm.CreateAffinity{Name: "apart", Kind: fsm.AffinityApart, Hard: true,
		VMs: []string{uuidFor("va"), uuidFor("vb"), uuidFor("vc"), uuidFor("vd")}, At: planT0})
	p := PlanBalance(f.s, "c1", planT0)
	where := map[string]string{}
	for _, k := range []string{"va", "vb", "vc", "vd"} {
		where[k] = "h1"
	}
	for _, mv := range p.Moves {
		if _, ok := where[mv.VM]; ok {
			where[mv.VM] = mv.To
		}
	}
	hosts := map[string]string{}
	for vm, h := range where {
		if other, ok := hosts[h]; ok {
			t.Fatalf("%s and %s both end on %s: %s", vm, other, h, planNote(p))
		}
		hosts[h] = vm
	}
}

// The budget, the free slots, a drain and the off switch stop a pass.
func TestBalanceBudgetSlotsDrainOff(t *testing.T) {
	f := newBalanceFixture(t, 12, func(c *fsm.Cluster) { c.BalanceBudget = 4 })
	p := PlanBalance(f.s, "c1", planT0)
	if len(p.Moves) != 4 || p.After <= 10 {
		t.Fatalf("budget 4: %s", planNote(p))
	}
	f.run(p, planT0)
	if p := PlanBalance(f.s, "c1", planT0.Add(30*time.Minute)); len(p.Moves) != 0 || !strings.Contains(p.Idle, "budget spent: 4") {
		t.Fatalf("budget spent: %s", planNote(p))
	}
	if p := PlanBalance(f.s, "c1", planT0.Add(61*time.Minute)); len(p.Moves) == 0 {
		t.Fatalf("an hour later: %s", planNote(p))
	}

	f = newBalanceFixture(t, 12, func(c *fsm.Cluster) { c.MaxConcurrent = 2 })
	if p := PlanBalance(f.s, "c1", planT0); len(p.Moves) != 2 {
		t.Fatalf("2 slots: %s", planNote(p))
	}

	f = newBalanceFixture(t, 12, nil)
	f.apply(fsm.CmdStartDrain, fsm.StartDrain{Host: "h1", Reason: "maintenance", At: planT0})
	if p := PlanBalance(f.s, "c1", planT0); len(p.Moves) != 0 || !strings.Contains(p.Idle, "h1 is being drained") {
		t.Fatalf("drain: %s", planNote(p))
	}

	f = newBalanceFixture(t, 12, func(c *fsm.Cluster) { c.Balance = fsm.BalanceOff })
	if p := PlanBalance(f.s, "c1", planT0); len(p.Moves) != 0 || p.Idle != "balancing is off" {
		t.Fatalf("off: %s", planNote(p))
	}
}

// CPU balancing weighs vCPUs over CPUs: 16 VMs of 1 vCPU on a 16-CPU
// host is 100 %, memory aside.
func TestBalanceCPU(t *testing.T) {
	f := newBalanceFixture(t, 8, func(c *fsm.Cluster) { c.Balance = fsm.BalanceCPU })
	p := PlanBalance(f.s, "c1", planT0)
	if p.Load["h1"] != 50 || p.After > 10 || len(p.Moves) != 6 {
		t.Fatalf("cpu: %s (load %v)", planNote(p), p.Load)
	}
}
