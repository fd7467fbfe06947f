package gossip

import (
	"testing"
	"time"
)

// drain empties the events of a so a test sees only what follows.
func drain(a *Agent) {
	for len(a.Events()) > 0 {
		<-a.Events()
	}
}

func TestOlderRecordNeverReplacesNewer(t *testing.T) {
	a := startAgent(t, testConfig("a"), testFacts("a"))
	f := testFacts("b")
	f.MemFreeMiB = 5
	a.mergeRecord(record{Name: "b", Version: 5, Facts: f}, nil, false)
	old := testFacts("b")
	old.MemFreeMiB = 4
	a.mergeRecord(record{Name: "b", Version: 4, Facts: old}, nil, false)
	a.mergeRecord(record{Name: "b", Version: 5, Facts: old}, nil, false)
	if v := version(a, "b"); v != 5 {
		t.Fatalf("version of b = %d, want 5", v)
	}
	a.mu.Lock()
	got := a.members["b"].rec.Facts.MemFreeMiB
	a.mu.Unlock()
	if got != 5 {
		t.Errorf("MemFreeMiB of b = %d, want 5 (the newest record)", got)
	}
	if _, ok := a.Member("b"); ok {
		t.Error("b is listed before memberlist reported it")
	}
}

func TestStaleSelfRecordIsRefuted(t *testing.T) {
	a := startAgent(t, testConfig("a"), testFacts("a"))
	stale := testFacts("a")
	stale.CPUModel = "previous life"
	a.mergeRecord(record{Name: "a", Version: 9, Facts: stale}, nil, false)
	m, _ := a.Member("a")
	if m.Version != 10 || m.Facts.CPUModel != "Skylake-Server" {
		t.Fatalf("after a stale v9 of itself, a is v%d %q, want v10 with its own facts", m.Version, m.Facts.CPUModel)
	}
	// Its own record echoed back changes nothing.
	a.mergeRecord(record{Name: "a", Version: 10, Facts: testFacts("a")}, nil, false)
	if m, _ := a.Member("a"); m.Version != 10 {
		t.Errorf("echo of own record moved version to %d", m.Version)
	}
}

// TestMissedLeaveNoticeIsCorrected: a peer that took a leave for a failure
// turns it into "left" when the leaving record reaches it.
func TestMissedLeaveNoticeIsCorrected(t *testing.T) {
	a := startAgent(t, testConfig("a"), testFacts("a"))
	a.mu.Lock()
	e := a.entryLocked("b")
	e.seen, e.status, e.have = true, StatusDead, true
	e.rec = record{Name: "b", Version: 3, Facts: testFacts("b")}
	a.mu.Unlock()
	drain(a)

	a.mergeRecord(record{Name: "b", Version: 4, Facts: testFacts("b"), Leaving: true}, nil, false)
	if m, _ := a.Member("b"); m.Status != StatusLeft {
		t.Fatalf("b is %s, want left", m.Status)
	}
	ev := waitEvent(t, a, time.Second, "left event of b", func(e Event) bool { return e.Member.Name == "b" })
	if ev.Type != EventLeft {
		t.Errorf("event %v, want left", ev.Type)
	}
}
