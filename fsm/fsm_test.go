package fsm

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// TestMain keeps the FSM's log lines (refused snapshots, stopped
// replicas) out of the test output: the tests assert on the errors.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// run applies one command through the raft.FSM interface, as Raft would.
func run(t *testing.T, f *FSM, ct CommandType, payload any) Result {
	t.Helper()
	data, err := Encode(ct, payload)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Type: raft.LogCommand, Index: f.Index() + 1, Data: data}).(Result)
}

func must(t *testing.T, f *FSM, ct CommandType, payload any) any {
	t.Helper()
	r := run(t, f, ct, payload)
	if r.Err != nil {
		t.Fatalf("command %d: %v", ct, r.Err)
	}
	return r.Value
}

func host(name, cluster string, freeMiB uint64) HostFacts {
	return HostFacts{Name: name, Cluster: cluster, MemTotalMiB: 16384, MemFreeMiB: freeMiB, CPUs: 8, CPUsFree: 8,
		Networks: []Network{{Name: "vmnet"}}, StorageDomains: []string{"shared"}}
}

// newFSM returns an FSM under the current rules (its first leader's entry
// applied) whose fail-stop fails the test.
func newFSM(t *testing.T) *FSM {
	t.Helper()
	f := New()
	f.SetFailStop(func(err error) { t.Errorf("replica stopped: %v", err) })
	must(t, f, CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: t0})
	return f
}

// cluster3 builds hosts h1..h3 in cluster c1 with vm1..vmN on h1.
func cluster3(t *testing.T, vms int) *FSM {
	t.Helper()
	f := newFSM(t)
	for _, h := range []string{"h1", "h2", "h3"} {
		must(t, f, CmdUpsertHost, UpsertHost{Facts: host(h, "c1", 8192)})
	}
	var list []VM
	for i := 1; i <= vms; i++ {
		list = append(list, testVM("vm"+string(rune('0'+i)), VMRunning))
	}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: list})
	return f
}

// testUUID is the UUID of the test VM named name (the same VM wherever it
// is reported).
func testUUID(name string) string {
	h := sha1.Sum([]byte(name))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// testVM is a 256 MiB VM with the UUID of its name.
func testVM(name, state string) VM {
	return VM{Name: name, UUID: testUUID(name), MemoryMiB: 256, VCPUs: 1, State: state}
}

// vmNamed returns the one VM named name in s, failing the test otherwise.
func vmNamed(t *testing.T, s *State, name string) *VM {
	t.Helper()
	_, vm, err := s.ResolveVM(name)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func TestRefusedCommandChangesNothing(t *testing.T) {
	f := cluster3(t, 1)
	before := f.State()
	// A well-formed but invalid SyncVMs (duplicate names) must change nothing,
	// not even the VMs listed before the duplicate.
	r := run(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{{Name: "x", State: VMRunning}, {Name: "x"}}})
	if !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("duplicate VM names: got %v, want ErrRejected", r.Err)
	}
	if !reflect.DeepEqual(before, f.State()) {
		t.Fatal("a refused command changed the state")
	}
}

func TestMigrationLifecycle(t *testing.T) {
	f := cluster3(t, 1)
	id := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	if r := run(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), id) {
		t.Fatalf("second migration of a migrating VM: got %v", r.Err)
	}
	if r := run(t, f, CmdFinish, Finish{Attempt: 1, ID: id, State: MigSucceeded, At: t0}); r.Err == nil {
		t.Fatal("a Queued migration must not succeed")
	}
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", BandwidthMiB: 52, At: t0})
	must(t, f, CmdProgress, ProgressUpdate{ID: id, Progress: Progress{Percent: 40, Iteration: 2}})
	// Inventory from the destination around switch-over must not move the VM.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMPaused)}})
	if got := vmNamed(t, f.State(), "vm1").Host; got != "h1" {
		t.Fatalf("VM moved to %s before Finish", got)
	}
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: id, State: MigSucceeded, DowntimeMs: 80, At: t0.Add(time.Second)})
	s := f.State()
	if vm := vmNamed(t, s, "vm1"); vm.Host != "h2" || vm.Migration != "" {
		t.Fatalf("after success vm1 = %+v, want on h2 and free", vm)
	}
	if m := s.Migrations[id]; m.State != MigSucceeded || m.DowntimeMs != 80 || len(s.Queue) != 0 {
		t.Fatalf("migration %+v queue %v", m, s.Queue)
	}
}

func TestGrantEnforcesSlotLimits(t *testing.T) {
	f := cluster3(t, 4)
	must(t, f, CmdSetCluster, SetCluster{Cluster: Cluster{Name: "c1", MaxOutgoing: 2, MaxIncoming: 1, MaxConcurrent: 5,
		BandwidthMode: BandwidthFixed, BandwidthMiB: 10}})
	var ids []string
	for _, vm := range []string{"vm1", "vm2", "vm3"} {
		ids = append(ids, must(t, f, CmdEnqueue, Enqueue{VM: vm, At: t0}).(string))
	}
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	if r := run(t, f, CmdGrant, Grant{ID: ids[1], Dest: "h2", At: t0}); r.Err == nil || !strings.Contains(r.Err.Error(), "incoming") {
		t.Fatalf("second incoming to h2: got %v, want incoming slot refusal", r.Err)
	}
	must(t, f, CmdGrant, Grant{ID: ids[1], Dest: "h3", At: t0})
	if r := run(t, f, CmdGrant, Grant{ID: ids[2], Dest: "h3", At: t0}); r.Err == nil || !strings.Contains(r.Err.Error(), "outgoing") {
		t.Fatalf("third outgoing from h1: got %v, want outgoing slot refusal", r.Err)
	}
	if u := f.State().Slots(); u.Out["h1"] != 2 || u.In["h2"] != 1 || u.In["h3"] != 1 {
		t.Fatalf("slots %+v", u)
	}
}

// TestGrantAndReshareSetCaps: a grant lowers the listed running migrations in
// the same entry; a reshare sets running ones and leaves ended ones alone;
// neither makes the leader plan again.
func TestGrantAndReshareSetCaps(t *testing.T) {
	f := cluster3(t, 3)
	var ids []string
	for _, vm := range []string{"vm1", "vm2", "vm3"} {
		ids = append(ids, must(t, f, CmdEnqueue, Enqueue{VM: vm, At: t0}).(string))
	}
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", BandwidthMiB: 100, At: t0})
	must(t, f, CmdGrant, Grant{ID: ids[1], Dest: "h3", BandwidthMiB: 50, At: t0, Reshare: []Share{{ID: ids[0], BandwidthMiB: 50}}})
	if s := f.State(); s.Migrations[ids[0]].GrantedMiB != 50 || s.Migrations[ids[1]].GrantedMiB != 50 {
		t.Fatalf("after the second grant: caps %d and %d, want 50 and 50", s.Migrations[ids[0]].GrantedMiB, s.Migrations[ids[1]].GrantedMiB)
	}
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: ids[1], State: MigSucceeded, At: t0})
	gen := f.SchedGen()
	if n := must(t, f, CmdReshare, Reshare{Shares: []Share{{ID: ids[0], BandwidthMiB: 100}, {ID: ids[1], BandwidthMiB: 100}, {ID: ids[2], BandwidthMiB: 100}}}); n != 1 {
		t.Errorf("reshare set %v migrations, want 1 (the others are not running)", n)
	}
	s := f.State()
	if s.Migrations[ids[0]].GrantedMiB != 100 || s.Migrations[ids[1]].GrantedMiB != 50 || s.Migrations[ids[2]].GrantedMiB != 0 {
		t.Errorf("after the reshare: caps %d, %d, %d; want 100, 50 (ended), 0 (queued)",
			s.Migrations[ids[0]].GrantedMiB, s.Migrations[ids[1]].GrantedMiB, s.Migrations[ids[2]].GrantedMiB)
	}
	if f.SchedGen() != gen {
		t.Errorf("a reshare moved the scheduling generation %d → %d", gen, f.SchedGen())
	}
}

func TestFailedMigrationRetriesOnceElsewhere(t *testing.T) {
	f := cluster3(t, 1)
	id := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0})
	must(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: MigFailed, Reason: "boom", Retry: true, At: t0})
	m := f.State().Migrations[id]
	if m.State != MigQueued || m.Attempt != 2 || !reflect.DeepEqual(m.Tried, []string{"h2"}) || m.Dest != "" {
		t.Fatalf("after first failure: %+v", m)
	}
	// A late report of attempt 1 must not touch attempt 2.
	if r := run(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: MigSucceeded, At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("stale finish of attempt 1: got %v", r.Err)
	}
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h3", At: t0})
	if r := run(t, f, CmdProgress, ProgressUpdate{ID: id, Attempt: 1, Progress: Progress{Percent: 50}}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("stale progress of attempt 1: got %v", r.Err)
	}
	must(t, f, CmdFinish, Finish{ID: id, Attempt: 2, State: MigFailed, Reason: "boom again", Retry: true, At: t0})
	s := f.State()
	if m := s.Migrations[id]; m.State != MigFailed || m.Reason != "boom again" {
		t.Fatalf("second failure must be final: %+v", m)
	}
	if vm := vmNamed(t, s, "vm1"); vm.Host != "h1" || vm.Migration != "" {
		t.Fatalf("failed migration must leave the VM on its source: %+v", vm)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	f := cluster3(t, 2)
	a := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	b := must(t, f, CmdEnqueue, Enqueue{VM: "vm2", At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: b, Dest: "h3", At: t0})
	must(t, f, CmdCancel, Cancel{ID: a, At: t0})
	must(t, f, CmdCancel, Cancel{ID: b, At: t0})
	s := f.State()
	if s.Migrations[a].State != MigCancelled || vmNamed(t, s, "vm1").Migration != "" {
		t.Fatalf("queued cancel: %+v", s.Migrations[a])
	}
	if m := s.Migrations[b]; m.State != MigRunning || !m.CancelRequested {
		t.Fatalf("running cancel must only be requested: %+v", m)
	}
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: b, State: MigCancelled, Reason: "aborted", Retry: true, At: t0})
	if m := f.State().Migrations[b]; m.State != MigCancelled {
		t.Fatalf("a cancelled migration must not be retried: %+v", m)
	}
}

func TestDrainQueuesEveryVMAndEndsInMaintenance(t *testing.T) {
	f := cluster3(t, 3)
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", Reason: "operator", At: t0}).([]string)
	if len(ids) != 3 {
		t.Fatalf("drain queued %d migrations, want 3", len(ids))
	}
	if st := f.State().Hosts["h1"].State; st != HostPreparingForMaintenance {
		t.Fatalf("host state %s", st)
	}
	for i, id := range ids {
		dest := []string{"h2", "h3", "h2"}[i]
		must(t, f, CmdGrant, Grant{ID: id, Dest: dest, At: t0})
		st := MigSucceeded
		if i == 2 {
			st = MigFailed
		}
		must(t, f, CmdFinish, Finish{Attempt: 1, ID: id, State: st, Reason: "no luck", At: t0})
	}
	s := f.State()
	d := s.Drains["h1"]
	if d.State != DrainStuck || d.Unmovable["vm3"] != "no luck" || d.Moved["vm1"] != "h1" {
		t.Fatalf("drain %+v", d)
	}
	if s.Hosts["h1"].State != HostPreparingForMaintenance {
		t.Fatal("a stuck drain must leave the host PreparingForMaintenance")
	}
	// The operator moves the last VM by hand: the drain completes.
	f2 := cluster3(t, 1)
	ids = must(t, f2, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	must(t, f2, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	must(t, f2, CmdFinish, Finish{Attempt: 1, ID: ids[0], State: MigSucceeded, At: t0})
	if s := f2.State(); s.Hosts["h1"].State != HostMaintenance || s.Drains["h1"].State != DrainDone {
		t.Fatalf("host %s drain %s", s.Hosts["h1"].State, s.Drains["h1"].State)
	}
	moved := must(t, f2, CmdActivate, Activate{Host: "h1"}).(map[string]string)
	if f2.State().Hosts["h1"].State != HostUp || moved["vm1"] != "h1" {
		t.Fatalf("activate: %v", moved)
	}
}

func TestDrainCancelReturnsHostUp(t *testing.T) {
	f := cluster3(t, 3)
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	must(t, f, CmdEndDrain, EndDrain{Host: "h1", State: DrainCancelled, At: t0})
	s := f.State()
	if s.Hosts["h1"].State != HostUp || s.Migrations[ids[1]].State != MigCancelled || s.Migrations[ids[0]].State != MigRunning {
		t.Fatalf("host %s, queued %s, running %s", s.Hosts["h1"].State, s.Migrations[ids[1]].State, s.Migrations[ids[0]].State)
	}
}

func TestSyncVMsKeepsOneHostPerVM(t *testing.T) {
	f := cluster3(t, 1)
	// h2 claims vm1 while h1 is alive: h1's record stands.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMShutoff)}})
	if h := vmNamed(t, f.State(), "vm1").Host; h != "h1" {
		t.Fatalf("vm1 on %s", h)
	}
	must(t, f, CmdSetHostState, SetHostState{Host: "h1", State: HostDown, Reason: "gossip: failed"})
	if st := vmNamed(t, f.State(), "vm1").State; st != VMUnknown {
		t.Fatalf("VM of a Down host is %s, want unknown", st)
	}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm1", VMRunning)}, Index: f.Index()})
	if h := vmNamed(t, f.State(), "vm1").Host; h != "h2" {
		t.Fatalf("after h1 is Down, vm1 on %s, want h2", h)
	}
	// A VM no longer reported is forgotten.
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: nil, Index: f.Index()})
	if _, _, err := f.State().ResolveVM("vm1"); err == nil {
		t.Fatal("vm1 still listed")
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

func TestSnapshotRestoreIsIdentical(t *testing.T) {
	f := cluster3(t, 3)
	must(t, f, CmdSetCluster, SetCluster{Cluster: DefaultCluster("c1")})
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := New()
	changed := g.Changed()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Restore did not signal a change")
	}
	a, _ := json.Marshal(f.State())
	b, _ := json.Marshal(g.State())
	if !bytes.Equal(a, b) {
		t.Fatalf("restored state differs:\n%s\n%s", a, b)
	}
	// The restored FSM goes on numbering migrations where the original stopped.
	if _, err := ApplyTo(g.state, 99, mustEncode(t, CmdEnqueue, Enqueue{VM: "vm9"})); !errors.Is(err, ErrRejected) {
		t.Fatalf("enqueue of unknown VM: %v", err)
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("{not json"))); err == nil {
		t.Fatal("restoring garbage must fail")
	}
}

func mustEncode(t *testing.T, ct CommandType, p any) []byte {
	t.Helper()
	b, err := Encode(ct, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSchedGenIgnoresProgress(t *testing.T) {
	f := cluster3(t, 1)
	id := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0})
	g := f.SchedGen()
	must(t, f, CmdProgress, ProgressUpdate{ID: id, Progress: Progress{Percent: 10}})
	if f.SchedGen() != g {
		t.Fatal("a progress sample moved the scheduling generation")
	}
	must(t, f, CmdFinish, Finish{Attempt: 1, ID: id, State: MigSucceeded, At: t0})
	if f.SchedGen() == g {
		t.Fatal("a finished migration did not move the scheduling generation")
	}
}

// TestRestoredDrainRecordsMoves: a drain's maps are left out of a snapshot
// while empty; the restored drain must still record its first move (it
// panicked the FSM goroutine).
func TestRestoredDrainRecordsMoves(t *testing.T) {
	f := cluster3(t, 1)
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0})
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	must(t, g, CmdFinish, Finish{Attempt: 1, ID: ids[0], State: MigSucceeded, At: t0})
	if d := g.State().Drains["h1"]; d.State != DrainDone || d.Moved["vm1"] != "h1" {
		t.Fatalf("restored drain after its move: %+v", d)
	}
}

// TestWritesRecordTheirActor: a migration and a drain record who asked,
// and a drain's migrations are asked by the drain's actor.
func TestWritesRecordTheirActor(t *testing.T) {
	f := cluster3(t, 2)
	id := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm1"), At: t0, Actor: "token:alice"}).(string)
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0, Actor: "host h1"}).([]string)
	s := f.State()
	if by := s.Migrations[id].RequestedBy; by != "token:alice" {
		t.Errorf("migration asked by %q", by)
	}
	if by := s.Drains["h1"].RequestedBy; by != "host h1" {
		t.Errorf("drain asked by %q", by)
	}
	if len(ids) != 1 || s.Migrations[ids[0]].RequestedBy != "host h1" {
		t.Errorf("drain's migrations %v asked by %q", ids, s.Migrations[ids[0]].RequestedBy)
	}
}

// TestFinishNeedsItsAttempt: from log version 2 on, a Finish without its
// attempt is refused (it could end a retry it knows nothing of); a v1
// log's replicas accepted it, and so do replicas replaying one.
func TestFinishNeedsItsAttempt(t *testing.T) {
	f := cluster3(t, 1)
	id := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm1"), At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0})
	if r := run(t, f, CmdFinish, Finish{ID: id, State: MigFailed, At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "no attempt") {
		t.Fatalf("finish without attempt: %v", r.Err)
	}
	old := New()
	must(t, old, CmdUpsertHost, UpsertHost{Facts: host("h1", "c1", 8192)})
	must(t, old, CmdUpsertHost, UpsertHost{Facts: host("h2", "c1", 8192)})
	must(t, old, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning)}})
	id = must(t, old, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	must(t, old, CmdFinish, Finish{ID: id, State: MigFailed, At: t0})
}

// TestGrantRunsTheGrantCheck: a Grant passes the FSM's GrantCheck (meshd
// sets package migrate's prerequisite checks) before it changes anything.
func TestGrantRunsTheGrantCheck(t *testing.T) {
	f := cluster3(t, 1)
	var asked []string
	f.SetGrantCheck(func(s *State, m *Migration, dest string) error {
		asked = append(asked, m.ID+"→"+dest)
		if dest == "h3" {
			return fmt.Errorf("dest-up: h3 is unwell")
		}
		return nil
	})
	id := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm1"), At: t0}).(string)
	before := f.State()
	if r := run(t, f, CmdGrant, Grant{ID: id, Dest: "h3", At: t0}); !errors.Is(r.Err, ErrRejected) || !strings.Contains(r.Err.Error(), "h3 is unwell") {
		t.Fatalf("grant the check refuses: %v", r.Err)
	}
	if !reflect.DeepEqual(before.Migrations[id], f.State().Migrations[id]) {
		t.Fatal("a refused grant changed the migration")
	}
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", At: t0})
	if strings.Join(asked, ",") != id+"→h3,"+id+"→h2" {
		t.Fatalf("checks asked: %v", asked)
	}
}

// TestUnsettledRecordsAndRaisesTheAlarm: a Running migration's unsettled
// reason is recorded, an alarm about its VM raised and cleared, a stale
// attempt refused, and Finish clears both.
func TestUnsettledRecordsAndRaisesTheAlarm(t *testing.T) {
	f := cluster3(t, 1)
	id := must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: id, Dest: "h2", BandwidthMiB: 52, At: t0})
	key := AlarmKey(AlarmMigrationUnsettled, f.State().MigrationVMKey(f.State().Migrations[id]))
	must(t, f, CmdUnsettled, Unsettled{ID: id, Attempt: 1, Reason: "h1 could not be read", At: t0})
	if s := f.State(); s.Migrations[id].Unsettled != "h1 could not be read" || s.Alarms[key] != nil {
		t.Fatalf("note without alarm: %+v, alarms %v", s.Migrations[id], s.Alarms)
	}
	must(t, f, CmdUnsettled, Unsettled{ID: id, Attempt: 1, Reason: "the guest runs on both", Alarm: true, Hosts: []string{"h2", "h1"}, At: t0})
	a := f.State().Alarms[key]
	if a == nil || a.Kind != AlarmMigrationUnsettled || strings.Join(a.Hosts, ",") != "h1,h2" || !strings.Contains(a.Message, "runs on both") {
		t.Fatalf("alarm %+v", a)
	}
	if r := run(t, f, CmdUnsettled, Unsettled{ID: id, Attempt: 2, Reason: "x", At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Errorf("unsettled of another attempt: %v, want rejected", r.Err)
	}
	must(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: MigFailed, Reason: "settled", At: t0})
	if s := f.State(); s.Migrations[id].Unsettled != "" || len(s.Alarms) != 0 {
		t.Errorf("after Finish: unsettled %q, alarms %v", s.Migrations[id].Unsettled, s.Alarms)
	}
	if r := run(t, f, CmdUnsettled, Unsettled{ID: id, Attempt: 1, Reason: "late", At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Errorf("unsettled of a finished migration: %v, want rejected", r.Err)
	}
	if err := Validate(mustEncode(t, CmdUnsettled, Unsettled{ID: id, Attempt: 1, Alarm: true, At: t0})); !errors.Is(err, ErrMalformed) {
		t.Errorf("an alarm without a reason: %v, want malformed", err)
	}
}
