package gossip

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hostmesh/hostmesh/fsm"
)

// held returns the record a holds for host, if any.
func held(a *Agent, host string) (record, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.members[host]
	if !ok || !e.have {
		return record{}, false
	}
	return e.rec, true
}

// badFacts are facts of host "b" that break one rule each.
func badFacts() map[string]fsm.HostFacts {
	mod := func(f func(*fsm.HostFacts)) fsm.HostFacts {
		x := testFacts("b")
		f(&x)
		return x
	}
	many := make([]string, 2000)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	return map[string]fsm.HostFacts{
		"negative CPUs":           mod(func(f *fsm.HostFacts) { f.CPUs = -1 }),
		"absurd CPUs":             mod(func(f *fsm.HostFacts) { f.CPUs, f.CPUsFree = 1<<30, 0 }),
		"more free CPUs than all": mod(func(f *fsm.HostFacts) { f.CPUsFree = f.CPUs + 1 }),
		"negative free CPUs":      mod(func(f *fsm.HostFacts) { f.CPUsFree = -4 }),
		"absurd memory":           mod(func(f *fsm.HostFacts) { f.MemTotalMiB = 1 << 40 }),
		"absurd free memory":      mod(func(f *fsm.HostFacts) { f.MemFreeMiB = math.MaxUint64 }),
		"2000 CPU flags":          mod(func(f *fsm.HostFacts) { f.CPUFlags = many }),
		"2000 storage domains":    mod(func(f *fsm.HostFacts) { f.StorageDomains = many }),
		"VLAN 5000":               mod(func(f *fsm.HostFacts) { f.Networks = []fsm.Network{{Name: "n", VLAN: 5000}} }),
		"control character":       mod(func(f *fsm.HostFacts) { f.CPUModel = "Sky\x00lake" }),
		"API address":             mod(func(f *fsm.HostFacts) { f.APIAddr = "no-port" }),
		"API port 0":              mod(func(f *fsm.HostFacts) { f.APIAddr = "127.0.0.1:0" }),
		"raft address":            mod(func(f *fsm.HostFacts) { f.RaftAddr = "127.0.0.1:99999" }),
		"management address":      mod(func(f *fsm.HostFacts) { f.MgmtAddr = "not an address" }),
		"hypervisor URI":          mod(func(f *fsm.HostFacts) { f.HypervisorURI = "://nothing" }),
		"empty cluster":           mod(func(f *fsm.HostFacts) { f.Cluster = "" }),
	}
}

// TestInvalidRecordsAreDroppedAndCounted: every rule breaks a record on its
// own; none is stored, each is counted, and a valid one still gets in.
func TestInvalidRecordsAreDroppedAndCounted(t *testing.T) {
	a := startAgent(t, testConfig("a"), testFacts("a"))
	var n uint64
	check := func(what string, r record) {
		t.Helper()
		a.mergeRecord(r, nil, false)
		n++
		if _, ok := held(a, r.Name); ok {
			t.Errorf("%s: stored", what)
		}
		if got := a.Stats().Rejected; got != n {
			t.Errorf("%s: rejected count %d, want %d", what, got, n)
		}
	}
	for what, f := range badFacts() {
		check(what, record{Name: "b", Version: 1, Facts: f})
	}
	for _, name := range []string{"", "-b", "b c", "b/c", "bé", strings.Repeat("b", 254)} {
		f := testFacts(name)
		check("name "+name, record{Name: name, Version: 1, Facts: f})
	}
	for _, v := range []uint64{0, MaxVersion + 1, math.MaxUint64} {
		check(fmt.Sprintf("version %d", v), record{Name: "b", Version: v, Facts: testFacts("b")})
	}
	a.mergeRecord(record{Name: "b", Version: 1, Facts: testFacts("b")}, nil, false)
	if _, ok := held(a, "b"); !ok {
		t.Fatal("a valid record was not stored")
	}

	// Through the wire: a record message, a push/pull state, a pull request.
	bad := record{Name: "c", Version: 1, Facts: badFacts()["negative CPUs"]}
	msg, err := encodeRecord(kindRecord, bad)
	if err != nil {
		t.Fatal(err)
	}
	d := &delegate{a: a}
	d.NotifyMsg(msg)
	d.NotifyMsg([]byte{kindRecord, 0xff})
	d.NotifyMsg(append([]byte{kindWant}, `{"from":"x","addr":"127.0.0.1:1","n":"a","v":1}`...))
	d.NotifyMsg(append([]byte{kindWant}, `{"from":"x","addr":"nowhere","n":"a","v":1}`...))
	state, err := encodeCompressed([]byte{kindState}, []record{bad, {Name: "d", Version: 2, Facts: testFacts("d")}})
	if err != nil {
		t.Fatal(err)
	}
	d.MergeRemoteState(state, false)
	many := make([]record, maxStateRecords+1)
	for i := range many {
		many[i] = record{Name: fmt.Sprintf("m%d", i), Version: 1, Facts: testFacts(fmt.Sprintf("m%d", i))}
	}
	big, err := encodeCompressed([]byte{kindState}, many)
	if err != nil {
		t.Fatal(err)
	}
	d.MergeRemoteState(big, false)
	if _, ok := held(a, "c"); ok {
		t.Error("an invalid gossiped record was stored")
	}
	if r, ok := held(a, "d"); !ok || r.Version != 2 {
		t.Error("the valid record of a push/pull state next to an invalid one was not stored")
	}
	if _, ok := held(a, "m0"); ok {
		t.Errorf("a push/pull state of %d records was merged", len(many))
	}
	// bad record, bad header, bad pull address, bad state record, big state
	if got, want := a.Stats().Rejected, n+5; got != want {
		t.Errorf("rejected %d, want %d", got, want)
	}
}

// TestOwnInvalidFactsRefused: a host does not publish facts its peers would
// drop; it says so where it can be fixed.
func TestOwnInvalidFactsRefused(t *testing.T) {
	f := testFacts("a")
	f.CPUsFree = 99
	if _, err := Start(testConfig("a"), f); !errors.Is(err, ErrInvalid) {
		t.Fatalf("start with invalid facts = %v, want ErrInvalid", err)
	}
	a := startAgent(t, testConfig("a"), testFacts("a"))
	a.Update(f)
	if m, _ := a.Member("a"); m.Version != 1 || m.Facts.CPUsFree != testFacts("a").CPUsFree {
		t.Errorf("invalid facts were published: v%d %+v", m.Version, m.Facts)
	}
}

// aliveWithMeta makes a believe memberlist reported host alive advertising
// version v.
func aliveWithMeta(a *Agent, host string, v uint64) {
	a.nodeAlive(&memberlist.Node{Name: host, Addr: net.ParseIP("127.0.0.1"), Port: 9, Meta: meta{Version: v}.encode()})
}

// TestRecordAtTheLargestVersionDoesNotWin: a record at MaxVersion of a host
// that advertises version 3 is refused; one held before the host's own
// advertisement arrived is discarded then, and the host's real record wins.
// Versions past MaxVersion (the old refute overflow at MaxUint64) are
// invalid, and a host never refutes a record of itself far ahead of its own
// version, so its counter never reaches the top.
func TestRecordAtTheLargestVersionDoesNotWin(t *testing.T) {
	a := startAgent(t, testConfig("a"), testFacts("a"))
	forged := testFacts("b")
	forged.CPUModel = "forged"

	// Held before b advertised anything: then discarded.
	a.mergeRecord(record{Name: "b", Version: MaxVersion, Facts: forged}, nil, false)
	if r, ok := held(a, "b"); !ok || r.Version != MaxVersion {
		t.Fatalf("record of a host not seen yet was not held: %+v", r)
	}
	aliveWithMeta(a, "b", 3)
	if _, ok := held(a, "b"); ok {
		t.Fatal("the record at MaxVersion survived its owner advertising version 3")
	}
	a.mergeRecord(record{Name: "b", Version: 3, Facts: testFacts("b")}, nil, false)
	if r, ok := held(a, "b"); !ok || r.Version != 3 || r.Facts.CPUModel == "forged" {
		t.Fatalf("b's own record did not replace the discarded one: %+v", r)
	}
	// Now refused at the door, at MaxVersion and anywhere past the lead.
	for _, v := range []uint64{MaxVersion, 3 + maxLead + 1} {
		a.mergeRecord(record{Name: "b", Version: v, Facts: forged}, nil, false)
		if r, _ := held(a, "b"); r.Version != 3 {
			t.Fatalf("record at %d replaced b's own v3", v)
		}
	}
	// Within the lead a newer record is news as ever.
	a.mergeRecord(record{Name: "b", Version: 5, Facts: testFacts("b")}, nil, false)
	if r, _ := held(a, "b"); r.Version != 5 {
		t.Fatalf("b v5 not taken: %+v", r)
	}
	if s := a.Stats(); s.Disowned != 3 {
		t.Errorf("disowned %d, want 3", s.Disowned)
	}

	// Its own record far ahead: not refuted (no jump to the top).
	stale := testFacts("a")
	stale.CPUModel = "previous life"
	a.mergeRecord(record{Name: "a", Version: MaxVersion - 1, Facts: stale}, nil, false)
	if m, _ := a.Member("a"); m.Version != 1 {
		t.Fatalf("a jumped to v%d after a record of itself far ahead", m.Version)
	}
	a.mergeRecord(record{Name: "a", Version: 7, Facts: stale}, nil, false)
	if m, _ := a.Member("a"); m.Version != 8 {
		t.Fatalf("a is v%d after a stale v7 of itself, want v8", m.Version)
	}
	if _, ok := decodeMeta(meta{Version: MaxVersion + 1}.encode()); ok {
		t.Error("metadata past MaxVersion decoded")
	}
}

// TestForgedTopRecordDoesNotSpread runs real agents: a record of h01 at
// MaxVersion planted in a host before it joins is discarded once the host
// learns h01's own version, h01 does not refute it, and every host ends
// with h01's real facts.
func TestForgedTopRecordDoesNotSpread(t *testing.T) {
	agents := startCluster(t, 2)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })
	c := startAgent(t, testConfig("h02"), testFacts("h02"))
	forged := testFacts("h01")
	forged.CPUModel = "forged"
	c.mergeRecord(record{Name: "h01", Version: MaxVersion, Facts: forged}, nil, false)
	if _, err := c.Join([]string{agents[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	all := append(agents, c)
	waitFor(t, convergeTimeout, "every host with h01's own facts", func() bool {
		for _, a := range all {
			m, ok := a.Member("h01")
			if !ok || m.Facts.CPUModel != "Skylake-Server" || m.Version != 1 {
				return false
			}
		}
		return true
	})
	if m, _ := agents[1].Member("h01"); m.Version != 1 {
		t.Errorf("h01 refuted the forged record: now v%d", m.Version)
	}
}

// TestEqualVersionsResolveTheSameEverywhere: two records of one host at one
// version (a restart, a forger) end the same on every host whatever the
// order they arrived in.
func TestEqualVersionsResolveTheSameEverywhere(t *testing.T) {
	x, y := testFacts("b"), testFacts("b")
	x.MemFreeMiB, y.MemFreeMiB = 100, 200
	a := startAgent(t, testConfig("a"), testFacts("a"))
	c := startAgent(t, testConfig("c"), testFacts("c"))
	a.mergeRecord(record{Name: "b", Version: 4, Facts: x}, nil, false)
	a.mergeRecord(record{Name: "b", Version: 4, Facts: y}, nil, false)
	c.mergeRecord(record{Name: "b", Version: 4, Facts: y}, nil, false)
	c.mergeRecord(record{Name: "b", Version: 4, Facts: x}, nil, false)
	ra, _ := held(a, "b")
	rc, _ := held(c, "b")
	if ra.Facts.MemFreeMiB != rc.Facts.MemFreeMiB {
		t.Fatalf("a holds %d, c holds %d: the order decided", ra.Facts.MemFreeMiB, rc.Facts.MemFreeMiB)
	}
	// A copy of what is held, as raw gossip: not news.
	msg, err := encodeRecord(kindRecord, ra)
	if err != nil {
		t.Fatal(err)
	}
	h, err := peekRecord(msg[1:])
	if err != nil {
		t.Fatal(err)
	}
	if a.isNews(h) {
		t.Error("an identical copy of the held record is news")
	}
}

// TestVanishedHostsArePruned: a host dead for longer than ReapAfter, and a
// record of a host memberlist never reported, leave the table; live hosts
// stay.
func TestVanishedHostsArePruned(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })
	a := agents[0]
	a.mergeRecord(record{Name: "ghost", Version: 1, Facts: testFacts("ghost")}, nil, false)
	if err := agents[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "h02 dead", func() bool {
		m, _ := a.Member("h02")
		return m.Status == StatusDead
	})
	a.prune(time.Now().Add(time.Minute))
	if _, ok := a.Member("h02"); !ok {
		t.Fatal("a host dead for a moment was pruned")
	}
	if _, ok := held(a, "ghost"); ok {
		t.Error("a record of a host never seen survived the unseen bound")
	}
	a.prune(time.Now().Add(25 * time.Hour))
	if _, ok := a.Member("h02"); ok {
		t.Error("a host dead for 25 h was not pruned")
	}
	if _, ok := a.Member("h01"); !ok {
		t.Error("a live host was pruned")
	}
	if s := a.Stats(); s.Pruned != 2 {
		t.Errorf("pruned %d, want 2", s.Pruned)
	}
}
