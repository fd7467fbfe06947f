package fsm

import (
	"errors"
	"strings"
	"testing"
)

func boolp(b bool) *bool { return &b }

// A VM with a passthrough device and a VM an operator pinned are reported
// unmovable by the drain's own entry, and the drain ends stuck once the
// others moved: not after every host refused them.
func TestDrainReportsUnmigratableVMsAtOnce(t *testing.T) {
	f := newFSM(t)
	for _, h := range []string{"h1", "h2"} {
		must(t, f, CmdUpsertHost, UpsertHost{Facts: host(h, "c1", 8192)})
	}
	gpu := testVM("gpu", VMRunning)
	gpu.HostDevices = []string{"pci 0000:03:00.0"}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{gpu, testVM("lic", VMRunning), testVM("web", VMRunning)}})
	must(t, f, CmdSetVM, SetVM{VM: "lic", Migratable: boolp(false), Actor: "token:ops", At: t0})

	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	if len(ids) != 1 {
		t.Fatalf("drain queued %v, want only web's migration", ids)
	}
	d := f.State().Drains["h1"]
	if why := d.Unmovable["gpu"]; !strings.HasPrefix(why, "migratable: ") || !strings.Contains(why, "pci 0000:03:00.0") {
		t.Errorf("gpu unmovable %q: want the migratable check naming its device", why)
	}
	if why := d.Unmovable["lic"]; !strings.HasPrefix(why, "migratable: ") || !strings.Contains(why, "token:ops") {
		t.Errorf("lic unmovable %q: want the migratable check naming who pinned it", why)
	}
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: ids[0], State: MigSucceeded, At: t0})
	if d := f.State().Drains["h1"]; d.State != DrainStuck || len(d.Moved) != 1 {
		t.Fatalf("drain %s moved %v, want stuck with web moved", d.State, d.Moved)
	}
}

// A pinned VM is refused by Enqueue; unpinning it lets it move; a VM
// that appears on a draining host unmovable is reported, not queued.
func TestSetVMPinsAndUnpins(t *testing.T) {
	f := cluster3(t, 2)
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Migratable: boolp(false), At: t0})
	r := run(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0})
	if !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "not migratable") {
		t.Fatalf("enqueue of a pinned VM: %v", r.Err)
	}
	if s := f.State(); s.NotMigratable(vmNamed(t, s, "vm1").Key()) == "" || len(s.Queue) != 0 {
		t.Fatal("vm1 must be pinned and nothing queued")
	}
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Migratable: boolp(true), At: t0})
	if s := f.State(); len(s.VMSettings) != 0 {
		t.Fatalf("settings %v: back to the default, nothing is stored", s.VMSettings)
	}
	must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0})

	// vm2 pinned while h1 drains (reconcile's Enqueue path).
	f = cluster3(t, 1)
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	late := testVM("late", VMRunning)
	late.HostDevices = []string{"usb 046d:c52b"}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning), late}, At: t0})
	if id := must(t, f, CmdEnqueue, Enqueue{VM: "late", Drain: "h1", At: t0}); id != "" {
		t.Fatalf("an unmovable VM was queued as %v", id)
	}
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: ids[0], State: MigSucceeded, At: t0})
	d := f.State().Drains["h1"]
	if d.State != DrainStuck || !strings.Contains(d.Unmovable["late"], "usb 046d:c52b") {
		t.Fatalf("drain %s unmovable %v", d.State, d.Unmovable)
	}
}

// Settings of an unknown VM are refused; settings go with their VM when
// its host no longer reports it.
func TestSetVMNeedsItsVM(t *testing.T) {
	f := cluster3(t, 1)
	if r := run(t, f, CmdSetVM, SetVM{VM: "nope", Migratable: boolp(false), At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("set of an unknown VM: %v", r.Err)
	}
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Migratable: boolp(false), At: t0})
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", At: t0})
	if s := f.State(); len(s.VMSettings) != 0 {
		t.Fatalf("settings %v outlived their VM", s.VMSettings)
	}
	if err := Validate(mustEncode(t, CmdSetVM, SetVM{VM: "vm1", At: t0})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Validate of a SetVM without a setting: %v", err)
	}
}

func strp(s string) *string { return &s }
func u64p(v uint64) *uint64 { return &v }

// A VM's own policy and bandwidth go to the migrations asked without
// theirs (a drain's, here) and yield to a migration's own; "" and 0 go
// back to the cluster's, and a VM with only those settings still moves.
func TestSetVMPolicyAndBandwidth(t *testing.T) {
	f := cluster3(t, 2)
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Policy: strp("post-copy"), BandwidthMiB: u64p(200), At: t0})
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	s := f.State()
	got := map[string][2]any{}
	for _, id := range ids {
		m := s.Migrations[id]
		got[m.VM] = [2]any{m.Policy, m.BandwidthMiB}
	}
	cl := s.Cluster("c1").Policy
	if got["vm1"] != [2]any{"post-copy", uint64(200)} || got["vm2"] != [2]any{cl, uint64(0)} {
		t.Fatalf("drain's migrations %v: want vm1 with its post-copy at 200 MiB/s, vm2 with the cluster's %s", got, cl)
	}
	f = cluster3(t, 2)
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Policy: strp("post-copy"), BandwidthMiB: u64p(200), At: t0})
	id := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", Policy: "precopy", BandwidthMiB: 50, At: t0}).(string)
	if m := f.State().Migrations[id]; m.Policy != "precopy" || m.BandwidthMiB != 50 {
		t.Fatalf("a migration's own policy and cap: got %s at %d", m.Policy, m.BandwidthMiB)
	}
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: id, State: MigCancelled, At: t0})
	must(t, f, CmdSetVM, SetVM{VM: "vm1", Policy: strp(""), At: t0})
	if vs := f.State().VMSettings; len(vs) != 1 || vs[vmNamed(t, f.State(), "vm1").Key()].BandwidthMiB != 200 {
		t.Fatalf("after resetting the policy only: %v, want the bandwidth kept", vs)
	}
	must(t, f, CmdSetVM, SetVM{VM: "vm1", BandwidthMiB: u64p(0), At: t0})
	if vs := f.State().VMSettings; len(vs) != 0 {
		t.Fatalf("back to the cluster's: settings %v, want none stored", vs)
	}
}
