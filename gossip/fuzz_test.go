package gossip

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/hashicorp/memberlist"
)

// The fuzz targets feed untrusted bytes to what a gossip agent does with
// what it receives: record decoding, user messages (records, pulls), push/
// pull state and the merge. Seed corpora are under testdata/fuzz; `make
// fuzz-short` runs each for a few seconds in CI and `make fuzz` for long.

// tableAgent is an agent without memberlist or background work: the table,
// the broadcast queue and the events only, for driving the receive path
// directly. It counts as stopped, so nothing is ever sent. Its own record's
// encoding is made once per process: fuzzing runs it thousands of times a
// second.
func tableAgent(name string) *Agent {
	a := &Agent{name: name, log: discard, t: Config{Fast: true}.timings(), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), events: make(chan Event, 64), members: map[string]*entry{}, stopped: true}
	a.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 1}
	self := a.entryLocked(name)
	self.rec = record{Name: name, Version: 1, Facts: testFacts(name)}
	self.have = true
	msg := selfMsgOf(name)
	a.selfMsg, self.enc = msg, msg
	return a
}

var selfMsgs sync.Map // name → encoded v1 record of testFacts(name)

func selfMsgOf(name string) []byte {
	if m, ok := selfMsgs.Load(name); ok {
		return m.([]byte)
	}
	m, err := encodeRecord(kindRecord, record{Name: name, Version: 1, Facts: testFacts(name)})
	if err != nil {
		panic(err)
	}
	selfMsgs.Store(name, m)
	return m
}

// tableView is an agent's table as comparable values: per host, whether a
// record is held, its version and canonical form.
type tableView map[string]string

func viewOf(a *Agent, peersOnly bool) tableView {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := tableView{}
	for name, e := range a.members {
		if peersOnly && name == a.name {
			continue
		}
		if !e.have {
			v[name] = "-"
			continue
		}
		v[name] = fmt.Sprintf("v%d %s", e.rec.Version, canonical(e.rec))
	}
	return v
}

// checkHeld fails when the table holds an invalid record or grew past its
// bound.
func checkHeld(t *testing.T, a *Agent) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.members) > maxEntries+1 {
		t.Fatalf("table of %d entries, over the bound of %d", len(a.members), maxEntries)
	}
	for name, e := range a.members {
		if e.have {
			if err := validateRecord(e.rec); err != nil {
				t.Fatalf("held record of %s is invalid: %v", name, err)
			}
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range seedRecords() {
		b, err := encodeRecord(kindRecord, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[1:])
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := peekRecord(data)
		if err != nil {
			return
		}
		r, err := h.record()
		if err != nil || validateRecord(r) != nil {
			return
		}
		// A valid record survives its own encoding unchanged.
		b, err := encodeRecord(kindRecord, r)
		if err != nil {
			t.Fatalf("re-encode a decoded valid record: %v", err)
		}
		r2, err := decodeRecord(b[1:])
		if err != nil {
			t.Fatalf("decode a re-encoded record: %v", err)
		}
		if r2.Name != r.Name || r2.Version != r.Version || r2.Leaving != r.Leaving || !sameFacts(r.Facts, r2.Facts) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, r2)
		}
	})
}

// FuzzNotifyMsg feeds one user message (record, pull request, reply, any
// kind) to an agent: it must neither panic nor store anything invalid.
func FuzzNotifyMsg(f *testing.F) {
	for _, r := range seedRecords() {
		b, err := encodeRecord(kindRecord, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append([]byte{kindReply}, b[1:]...))
	}
	w, _ := encodeWant(want{From: "h1", Addr: "127.0.0.1:7946", Name: "self", Version: 1})
	f.Add(w)
	f.Add([]byte{kindWant, '{', '}'})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, data []byte) {
		a := tableAgent("self")
		d := &delegate{a: a}
		d.NotifyMsg(data)
		d.NotifyMsg(data)
		checkHeld(t, a)
	})
}

// deflate compresses raw bytes as push/pull state travels, so the fuzzer
// works on the JSON inside (with the agent's pooled writers: a new one
// allocates a megabyte).
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	buf.WriteByte(kindState)
	zw := writers.Get().(*flate.Writer)
	defer writers.Put(zw)
	zw.Reset(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// FuzzMergeRemoteState feeds push/pull state, given as the JSON inside the
// deflate, to an agent: no panic, nothing invalid stored, the table bounded,
// and the same state merged twice changes nothing the second time.
func FuzzMergeRemoteState(f *testing.F) {
	seed, _ := json.Marshal(seedRecords())
	f.Add(seed)
	f.Add([]byte(`[{"n":"h1","v":1,"f":{"name":"h1","cpus":-1}}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[{}]`))
	f.Fuzz(func(t *testing.T, js []byte) {
		a := tableAgent("self")
		d := &delegate{a: a}
		msg := deflate(js)
		d.MergeRemoteState(msg, false)
		checkHeld(t, a)
		before := viewOf(a, false)
		d.MergeRemoteState(msg, false)
		if after := viewOf(a, false); !reflect.DeepEqual(before, after) {
			t.Fatalf("merging the same state twice changed the table:\n%v\n%v", before, after)
		}
		d.MergeRemoteState(js, false) // not deflated, not framed
	})
}

// FuzzMerge merges a sequence of records built from the input (names of a
// few hosts and of the agent itself, versions at the edges: 0, 1, MaxVersion,
// past it, MaxUint64; valid and invalid facts; leaving or not). The merge
// must be deterministic (two agents fed the same sequence hold the same
// table), idempotent (the sequence again changes nothing) and, for other
// hosts' records, independent of order (the reversed sequence gives the same
// table): every host converges whatever path copies take. Nothing invalid is
// ever held.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 1, 2, 1, 0, 1, 2, 0, 1})
	f.Add([]byte{1, 7, 0, 0, 1, 6, 1, 0, 1, 5, 2, 1, 2, 4, 3, 0})
	f.Add([]byte{4, 3, 0, 0, 4, 2, 1, 0, 4, 1, 2, 1})
	f.Add(binary.AppendUvarint([]byte{2, 8, 0}, 1<<40))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := recordsFrom(data)
		a, b := tableAgent("self"), tableAgent("self")
		for _, r := range recs {
			a.mergeRecord(r, nil, false)
			b.mergeRecord(r, nil, false)
		}
		checkHeld(t, a)
		va := viewOf(a, false)
		if vb := viewOf(b, false); !reflect.DeepEqual(va, vb) {
			t.Fatalf("same records, same order, different tables:\n%v\n%v", va, vb)
		}
		for _, r := range recs {
			a.mergeRecord(r, nil, false)
		}
		if again := viewOf(a, false); !reflect.DeepEqual(va, again) {
			t.Fatalf("merging the records again changed the table:\n%v\n%v", va, again)
		}
		c := tableAgent("self")
		for i := len(recs) - 1; i >= 0; i-- {
			c.mergeRecord(recs[i], nil, false)
		}
		if vp, vc := viewOf(a, true), viewOf(c, true); !reflect.DeepEqual(vp, vc) {
			t.Fatalf("the order of other hosts' records decided the table:\n%v\n%v", vp, vc)
		}
	})
}

// recordsFrom turns fuzz input into records, four bytes (or more, for a
// raw version) each: host, version selector, facts variant, flags.
func recordsFrom(data []byte) []record {
	names := []string{"h1", "h2", "h3", "self", "h-4.example"}
	var out []record
	for len(data) >= 4 && len(out) < 64 {
		r := record{Name: names[int(data[0])%len(names)]}
		switch sel := data[1] % 9; sel {
		case 0:
			r.Version = 0
		case 5:
			r.Version = MaxVersion
		case 6:
			r.Version = MaxVersion + 1
		case 7:
			r.Version = math.MaxUint64
		case 8:
			v, n := binary.Uvarint(data[4:])
			if n > 0 {
				data = data[n:]
			}
			r.Version = v
		default:
			r.Version = uint64(sel)
		}
		r.Facts = testFacts(r.Name)
		switch data[2] % 4 {
		case 1:
			r.Facts.MemFreeMiB = 1000
		case 2:
			r.Facts.CPUModel = "Icelake"
		case 3:
			r.Facts.CPUs = -1
		}
		r.Leaving = data[3]&1 != 0
		out = append(out, r)
		data = data[4:]
	}
	return out
}

// seedRecords are valid records of a few shapes.
func seedRecords() []record {
	big := testFacts("h2")
	big.CPUFlags = realFlags()
	return []record{
		{Name: "h1", Version: 1, Facts: testFacts("h1")},
		{Name: "h2", Version: 42, Facts: big, Leaving: true},
		{Name: "self", Version: MaxVersion, Facts: testFacts("self")},
	}
}
