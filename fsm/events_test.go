package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func kinds(evs []Event) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}

// TestEventsTellAMigrationAndADrain: the log of a drain reads as what
// happened, with who asked, when (the commands' times) and about what.
func TestEventsTellAMigrationAndADrain(t *testing.T) {
	f := cluster3(t, 2)
	_, last := f.Events(EventQuery{})
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0, Actor: "token:ops"}).([]string)
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", BandwidthMiB: 52, Reason: "h2: best", At: t0.Add(time.Second)})
	for _, p := range []float64{10, 30, 31, 80} {
		must(t, f, CmdProgress, ProgressUpdate{ID: ids[0], Attempt: 1, Progress: Progress{Percent: p, ElapsedMs: int64(p) * 10}})
	}
	must(t, f, CmdProgress, ProgressUpdate{ID: ids[0], Attempt: 1, Progress: Progress{Percent: 90, ElapsedMs: 900, PostCopy: true}})
	must(t, f, CmdFinish, Finish{ID: ids[0], Attempt: 1, State: MigSucceeded, DowntimeMs: 20, At: t0.Add(3 * time.Second), Actor: "host h1"})
	must(t, f, CmdGrant, Grant{ID: ids[1], Dest: "h3", At: t0.Add(4 * time.Second)})
	must(t, f, CmdFinish, Finish{ID: ids[1], Attempt: 1, State: MigFailed, Reason: "boom", At: t0.Add(5 * time.Second), Actor: "host h1"})
	evs, _ := f.Events(EventQuery{After: last})
	want := "drain.started migration.queued migration.queued migration.granted migration.progress migration.progress " +
		"migration.postcopy migration.succeeded migration.granted migration.failed drain.unmovable drain.stuck"
	if got := kinds(evs); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	q := evs[1]
	if q.Actor != "token:ops" || !q.Time.Equal(t0) || q.Migration != ids[0] || q.VM != "vm1" || q.VMUUID != testUUID("vm1") ||
		q.Drain != "h1" || q.Hosts[0] != "h1" || q.Index == 0 || q.Seq != last+2 {
		t.Errorf("queued event %+v", q)
	}
	if g := evs[3]; g.Actor != "host h1" || !strings.Contains(g.Message, "h1 → h2") || strings.Join(g.Hosts, ",") != "h1,h2" {
		t.Errorf("granted event %+v (the leader h1 grants)", g)
	}
	if p := evs[4]; !strings.Contains(p.Message, "at 25%") || !p.Time.Equal(t0.Add(time.Second+300*time.Millisecond)) {
		t.Errorf("first milestone %+v", p)
	}
	if p := evs[5]; !strings.Contains(p.Message, "at 75%") {
		t.Errorf("second milestone (30%% → 80%% crosses 50 and 75: one event, the highest) %+v", p)
	}
	if s := evs[7]; !strings.Contains(s.Message, "in 2s, downtime 20 ms") || s.Actor != "host h1" {
		t.Errorf("succeeded event %+v", s)
	}
	if u := evs[10]; u.VM != "vm2" || !strings.Contains(u.Message, "boom") {
		t.Errorf("unmovable event %+v", u)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 || evs[i].Index < evs[i-1].Index {
			t.Fatalf("events out of order: %+v then %+v", evs[i-1], evs[i])
		}
	}
}

func TestEventsQuery(t *testing.T) {
	f := cluster3(t, 2)
	a := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm1"), Dest: "h2", At: t0}).(string)
	must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm2"), Dest: "h3", At: t0})
	must(t, f, CmdCancel, Cancel{ID: a, At: t0})
	for name, c := range map[string]struct {
		q    EventQuery
		want int
	}{
		"vm by name":      {EventQuery{VM: "vm1"}, 2},
		"vm by uuid":      {EventQuery{VM: strings.ToUpper(testUUID("vm1"))}, 2},
		"host (as dest)":  {EventQuery{Host: "h3"}, 2}, // h3 joined, vm2 queued to it
		"limit":           {EventQuery{VM: "vm1", Limit: 1}, 1},
		"last":            {EventQuery{VM: "vm1", Last: 1}, 1},
		"last over all":   {EventQuery{VM: "vm1", Last: 50}, 2},
		"after the last":  {EventQuery{After: 1 << 40}, 0},
		"nothing matches": {EventQuery{Host: "h9"}, 0},
	} {
		got, _ := f.Events(c.q)
		if len(got) != c.want {
			t.Errorf("%s: %d events (%s), want %d", name, len(got), kinds(got), c.want)
		}
	}
	// Last keeps the newest, Limit the oldest.
	all, _ := f.Events(EventQuery{VM: "vm1"})
	first, _ := f.Events(EventQuery{VM: "vm1", Limit: 1})
	newest, _ := f.Events(EventQuery{VM: "vm1", Last: 1})
	if len(all) != 2 || first[0].Seq != all[0].Seq || newest[0].Seq != all[1].Seq {
		t.Errorf("vm1's events %s: Limit 1 gave seq %d, Last 1 gave seq %d; want the first and the last", kinds(all), first[0].Seq, newest[0].Seq)
	}
}

// TestEventLogIsBoundedAndSnapshotted: the log keeps the newest
// MaxEvents, numbered without gaps, through a snapshot; a clone has none.
func TestEventLogIsBoundedAndSnapshotted(t *testing.T) {
	f := cluster3(t, 1)
	for i := 0; i < MaxEvents; i++ {
		id := must(t, f, CmdEnqueue, Enqueue{VM: testUUID("vm1"), At: t0}).(string)
		must(t, f, CmdCancel, Cancel{ID: id, At: t0})
	}
	evs, last := f.Events(EventQuery{})
	if len(evs) != MaxEvents || evs[len(evs)-1].Seq != last || evs[0].Seq != last-MaxEvents+1 {
		t.Fatalf("%d events, %d..%d, last %d", len(evs), evs[0].Seq, evs[len(evs)-1].Seq, last)
	}
	if f.State().Events != nil {
		t.Fatal("State() copied the event log")
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
		t.Fatal(err)
	}
	got, glast := g.Events(EventQuery{})
	a, _ := json.Marshal(evs)
	b, _ := json.Marshal(got)
	if glast != last || !bytes.Equal(a, b) {
		t.Fatal("the restored event log differs")
	}
	must(t, g, CmdEnqueue, Enqueue{VM: testUUID("vm1"), At: t0})
	if next, _ := g.Events(EventQuery{After: last}); len(next) != 1 || next[0].Seq != last+1 {
		t.Fatalf("after the restore: %+v", next)
	}
}

// TestEventsAreTheSameOnEveryReplica: two replicas fed the same random
// log (alarms, drains, retries) record the same events, byte for byte.
func TestEventsAreTheSameOnEveryReplica(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		a, b := cluster3(t, 4), cluster3(t, 4)
		for step := 0; step < 300; step++ {
			ct, p := randomCommand(r, a.State())
			data := mustEncode(t, ct, p)
			for _, f := range []*FSM{a, b} {
				f.Apply(&raft.Log{Type: raft.LogCommand, Index: f.Index() + 1, Data: data})
			}
		}
		ea, _ := a.Events(EventQuery{})
		eb, _ := b.Events(EventQuery{})
		ja, _ := json.Marshal(ea)
		jb, _ := json.Marshal(eb)
		if !bytes.Equal(ja, jb) || len(ea) < 20 {
			t.Fatalf("seed %d: %d and %d events differ (or too few)", seed, len(ea), len(eb))
		}
		sa, _ := json.Marshal(a.State())
		sb, _ := json.Marshal(b.State())
		if !bytes.Equal(sa, sb) {
			t.Fatalf("seed %d: states differ", seed)
		}
	}
}

// TestOldLogRecordsNoEvents: a v1 log's replicas recorded none.
func TestOldLogRecordsNoEvents(t *testing.T) {
	f := New()
	must(t, f, CmdUpsertHost, UpsertHost{Facts: host("h1", "c1", 8192)})
	if evs, last := f.Events(EventQuery{}); len(evs) != 0 || last != 0 {
		t.Fatalf("v1 events: %v", evs)
	}
	must(t, f, CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: t0})
	if evs, _ := f.Events(EventQuery{}); kinds(evs) != EventLeaderElected || !strings.Contains(evs[0].Message, "h1 is the leader") {
		t.Fatalf("after the upgrade: %s", fmt.Sprint(evs))
	}
}
