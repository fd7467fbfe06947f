package fsm

import (
	"errors"
	"strings"
	"testing"
)

// TestTwoVMsOfOneNameAreTwoVMs: names are unique per host only; keyed by
// UUID, two domains of one name on two hosts no longer hide each other.
// A name then needs its UUID to be migrated.
func TestTwoVMsOfOneNameAreTwoVMs(t *testing.T) {
	f := cluster3(t, 1)
	other := testVM("vm1", VMRunning)
	other.UUID = testUUID("the other vm1")
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{other}, Index: f.Index(), At: t0})
	s := f.State()
	if len(s.VMs) != 2 {
		t.Fatalf("%d VMs, want both vm1", len(s.VMs))
	}
	_, _, err := s.ResolveVM("vm1")
	var amb *AmbiguousVMError
	if !errors.As(err, &amb) || !errors.Is(err, ErrAmbiguousVM) || len(amb.Candidates) != 2 {
		t.Fatalf("resolving an ambiguous name: %v", err)
	}
	for _, want := range []string{"on h1 (uuid " + testUUID("vm1") + ")", "on h2 (uuid " + other.UUID + ")", "name one by its UUID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ambiguity error %q lacks %q", err, want)
		}
	}
	if k, vm, err := s.ResolveVM(strings.ToUpper(other.UUID)); err != nil || vm.Host != "h2" || k != other.UUID {
		t.Fatalf("by upper-case UUID: %q %+v %v", k, vm, err)
	}
	if _, _, err := s.ResolveVM("nope"); !errors.Is(err, ErrNoVM) {
		t.Fatalf("unknown name: %v", err)
	}
	if r := run(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "ambiguous") {
		t.Fatalf("enqueue by an ambiguous name: %v", r.Err)
	}
	id := must(t, f, CmdEnqueue, Enqueue{VM: other.UUID, At: t0}).(string)
	if m := f.State().Migrations[id]; m.Source != "h2" || m.VM != "vm1" || m.VMUUID != other.UUID {
		t.Fatalf("migration %+v", m)
	}
}

// splitBrain sets up vm1 recorded on h1 and running there, and h2 running a
// copy of it (same UUID).
func splitBrain(t *testing.T) *FSM {
	t.Helper()
	f := cluster3(t, 1)
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMRunning)}, Index: f.Index(), At: t0})
	return f
}

func TestSplitBrainAlarmStandsUntilOneHostRunsTheVM(t *testing.T) {
	f := splitBrain(t)
	s := f.State()
	key := testUUID("vm1")
	a := s.SplitBrain(key)
	if a == nil || a.Kind != AlarmSplitBrain || strings.Join(a.Hosts, ",") != "h1,h2" || !a.Since.Equal(t0) || a.VM != "vm1" {
		t.Fatalf("alarm %+v, want split-brain of vm1 on h1,h2 since t0", a)
	}
	if vm := s.VMs[key]; vm.Host != "h1" {
		t.Fatalf("the record moved to %s", vm.Host)
	}
	if r := run(t, f, CmdEnqueue, Enqueue{VM: key, At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "split brain") {
		t.Fatalf("enqueue during a split brain: %v", r.Err)
	}
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	if d := f.State().Drains["h1"]; len(ids) != 0 || !strings.Contains(d.Unmovable["vm1"], "split brain") {
		t.Fatalf("drain during a split brain: queued %v, unmovable %v", ids, d.Unmovable)
	}
	// h2 reports it again: one alarm, not two.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMRunning)}, Index: f.Index(), At: t0})
	if len(f.State().Alarms) != 1 {
		t.Fatalf("alarms %v", f.State().Alarms)
	}
	// The operator stops the copy on h2: the alarm clears.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: nil, Index: f.Index(), At: t0})
	if s := f.State(); len(s.Alarms) != 0 || s.VMs[key].Host != "h1" {
		t.Fatalf("after h2 stopped its copy: alarms %v, vm on %s", s.Alarms, s.VMs[key].Host)
	}
}

// TestSplitBrainHeldVMRaisesNothingUntilReleased: a migration holds its
// VM (both hosts list it around a switch-over), so a copy seen then is no
// alarm; once the migration ends, the same report is one. A grant is
// refused whenever an alarm stands (one that came with a restored state).
func TestSplitBrainHeldVMRaisesNothingUntilReleased(t *testing.T) {
	f := cluster3(t, 1)
	key := testUUID("vm1")
	id := must(t, f, CmdEnqueue, Enqueue{VM: key, At: t0}).(string)
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h3", VMs: []VM{testVM("vm1", VMRunning)}, Index: f.Index(), At: t0})
	if f.State().SplitBrain(key) != nil {
		t.Fatal("an alarm for a VM a migration holds")
	}
	f.state.Alarms[AlarmKey(AlarmSplitBrain, key)] = &Alarm{Kind: AlarmSplitBrain, VMUUID: key, VM: "vm1", Hosts: []string{"h1", "h3"}}
	if r := run(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "split brain") {
		t.Fatalf("grant during a split brain: %v", r.Err)
	}
	delete(f.state.Alarms, AlarmKey(AlarmSplitBrain, key))
	must(t, f, CmdCancel, Cancel{ID: id, At: t0})
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h3", VMs: []VM{testVM("vm1", VMRunning)}, Index: f.Index(), At: t0})
	if f.State().SplitBrain(key) == nil {
		t.Fatal("no alarm once the migration ended")
	}
}

// TestShutOffCopyIsNoSplitBrain: a defined but shut-off copy on another
// host (a leftover domain) does not run twice.
func TestShutOffCopyIsNoSplitBrain(t *testing.T) {
	f := cluster3(t, 1)
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMShutoff)}, Index: f.Index(), At: t0})
	if a := f.State().Alarms; len(a) != 0 {
		t.Fatalf("alarms %v", a)
	}
	// ... and a split brain clears when one copy is shut off.
	f = splitBrain(t)
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMShutoff)}, Index: f.Index(), At: t0})
	if a := f.State().Alarms; len(a) != 0 {
		t.Fatalf("alarms after the copy on h2 was shut off: %v", a)
	}
}

// TestInventoryReadBeforeAMoveIsOutOfDate: around a finished migration the
// source's inventory read before the Finish still lists the VM, and the
// destination's read before the switch-over does not: neither is a split
// brain nor a vanished VM. A report read after the Finish is the truth.
func TestInventoryReadBeforeAMoveIsOutOfDate(t *testing.T) {
	f := cluster3(t, 1)
	key := testUUID("vm1")
	id := must(t, f, CmdEnqueue, Enqueue{VM: key, At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0})
	before := f.Index() // both hosts read their hypervisors here
	must(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: MigSucceeded, At: t0})
	moved := f.Index()
	if vm := f.State().VMs[key]; vm.Host != "h2" || vm.MovedIndex != moved {
		t.Fatalf("after the Finish: %+v", vm)
	}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning)}, Index: before, At: t0})
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: nil, Index: before, At: t0})
	s := f.State()
	if vm := s.VMs[key]; vm == nil || vm.Host != "h2" || len(s.Alarms) != 0 {
		t.Fatalf("after reports read before the move: vm %+v, alarms %v", vm, s.Alarms)
	}
	// Read after the Finish, h1 still running it is a split brain.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning)}, Index: moved, At: t0})
	if f.State().SplitBrain(key) == nil {
		t.Fatal("a copy reported after the move raised no alarm")
	}
}

// TestV1MigrationsGetTheirUUIDAtTheUpgrade: a migration queued under a v1
// log names its VM only; the first v2 leader's entry gives unfinished ones
// the UUID, finished ones keep the v1 record.
func TestV1MigrationsGetTheirUUIDAtTheUpgrade(t *testing.T) {
	f := New()
	for _, h := range []string{"h1", "h2"} {
		must(t, f, CmdUpsertHost, UpsertHost{Facts: host(h, "c1", 8192)})
	}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning), testVM("vm2", VMRunning)}})
	done := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	must(t, f, CmdCancel, Cancel{ID: done, At: t0})
	open := must(t, f, CmdEnqueue, Enqueue{VM: "vm2", At: t0}).(string)
	if m := f.State().Migrations[open]; m.VMUUID != "" {
		t.Fatalf("a v1 migration got a UUID: %+v", m)
	}
	must(t, f, CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: t0})
	s := f.State()
	if s.Migrations[open].VMUUID != testUUID("vm2") || s.Migrations[done].VMUUID != "" {
		t.Fatalf("after the upgrade: open %q, done %q", s.Migrations[open].VMUUID, s.Migrations[done].VMUUID)
	}
}
