package fsm

import (
	"bytes"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// bounce runs n migrations of vm1 between h1 and h2 to success, each
// ending step after the last, and returns the last ID.
func bounce(t testing.TB, f *FSM, n int, start time.Time, step time.Duration) (string, time.Time) {
	at, dest, id := start, "h2", ""
	key := testUUID("vm1")
	for i := 0; i < n; i++ {
		at = at.Add(step)
		r := run1(t, f, CmdEnqueue, Enqueue{VM: key, Dest: dest, At: at})
		id = r.(string)
		run1(t, f, CmdGrant, Grant{ID: id, Dest: dest, At: at})
		run1(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: MigSucceeded, At: at})
		dest = map[string]string{"h1": "h2", "h2": "h1"}[dest]
	}
	return id, at
}

// run1 applies a command that must succeed, for tests and benchmarks.
func run1(t testing.TB, f *FSM, ct CommandType, p any) any {
	data, err := Encode(ct, p)
	if err != nil {
		t.Fatal(err)
	}
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: f.Index() + 1, Data: data}).(Result)
	if r.Err != nil {
		t.Fatalf("%s: %v", ct, r.Err)
	}
	return r.Value
}

func TestRetentionKeepsTheLatestFinished(t *testing.T) {
	f := cluster3(t, 2)
	running := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm2"), Dest: "h3", At: t0}).(string)
	must(t, f, CmdGrant, Grant{ID: running, Dest: "h3", At: t0})
	last, at := bounce(t, f, MaxFinished+500, t0, time.Second)
	s := f.State()
	if len(s.Migrations) != MaxFinished+1 || len(s.History) != MaxFinished {
		t.Fatalf("%d migrations, %d in the history; want %d finished and the running one", len(s.Migrations), len(s.History), MaxFinished)
	}
	if s.Migrations[running] == nil || s.Migrations[last] == nil || s.Migrations["m2"] != nil {
		t.Fatal("the retention dropped the running or the latest migration, or kept the oldest")
	}
	// A week later, a command's time makes the older ones expire.
	must(t, f, CmdSetHostState, SetHostState{Host: "h3", State: HostUp, At: at.Add(RetainFinished + time.Hour)})
	bounce(t, f, 1, at.Add(RetainFinished+time.Hour), time.Second)
	if s := f.State(); len(s.History) != 1 || len(s.Migrations) != 2 {
		t.Fatalf("after a week: %d in the history, %d migrations; want 1 and 2", len(s.History), len(s.Migrations))
	}
}

// TestRetentionStartsAtTheUpgrade: a v1 log kept every migration; the
// first v2 leader's entry orders them by end and applies the retention.
func TestRetentionStartsAtTheUpgrade(t *testing.T) {
	f := New()
	for _, h := range []string{"h1", "h2"} {
		must(t, f, CmdUpsertHost, UpsertHost{Facts: host(h, "c1", 8192)})
	}
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h1", VMs: []VM{testVM("vm1", VMRunning)}})
	_, at := bounce(t, f, MaxFinished+10, t0, time.Second)
	if n := len(f.State().Migrations); n != MaxFinished+10 {
		t.Fatalf("a v1 log kept %d migrations, want all %d", n, MaxFinished+10)
	}
	must(t, f, CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: at})
	s := f.State()
	if len(s.Migrations) != MaxFinished || s.Migrations["m10"] != nil || s.Migrations["m11"] == nil {
		t.Fatalf("after the upgrade: %d migrations, m10 kept %v, m11 kept %v", len(s.Migrations), s.Migrations["m10"] != nil, s.Migrations["m11"] != nil)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestStateStaysBoundedAfter100000Migrations: issue 10's retention test,
// on the FSM alone. After 100,000 finished migrations the snapshot and the
// FSM's heap stay under the bounds below: the history (MaxFinished) and
// the event log (MaxEvents) are what they hold, whatever the count.
func TestStateStaysBoundedAfter100000Migrations(t *testing.T) {
	const (
		migrations   = 100000
		maxSnapshot  = 3 << 20  // bytes
		maxHeapBytes = 24 << 20 // the FSM's heap, measured after a GC
	)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := cluster3(t, 1)
	start := time.Now()
	bounce(t, f, migrations, t0, time.Second)
	took := time.Since(start)
	snap := persist(t, f)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	s := f.State()
	evs, _ := f.Events(EventQuery{})
	t.Logf("%d migrations in %s: %d kept, %d events, snapshot %d KiB, FSM heap %d KiB", migrations, took.Round(time.Millisecond),
		len(s.Migrations), len(evs), len(snap)>>10, heap>>10)
	if len(snap) > maxSnapshot {
		t.Errorf("snapshot of %d bytes, over the bound of %d", len(snap), maxSnapshot)
	}
	if heap > maxHeapBytes {
		t.Errorf("FSM heap of %d bytes, over the bound of %d", heap, maxHeapBytes)
	}
	if n := s.Seq; n != migrations {
		t.Fatalf("Seq %d", n)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(f)
	if id := "m" + strconv.Itoa(migrations); g.State().Migrations[id] == nil {
		t.Fatalf("restored state lacks the last migration %s", id)
	}
}
