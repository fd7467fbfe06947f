package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// fuzzSeeds adds every command entry of the recorded fixtures, and their
// snapshots, as seeds.
func fuzzSeeds(f *testing.F, entries bool) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "v*"))
	for _, dir := range dirs {
		if !entries {
			if b, err := os.ReadFile(filepath.Join(dir, "snapshot.bin")); err == nil {
				f.Add(b)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "log.bin"))
		if err != nil {
			f.Fatal(err)
		}
		log, err := readLog(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range log {
			if e.Type == raft.LogCommand {
				f.Add(e.Data)
			}
		}
	}
}

// fuzzReplica is a replica under the current rules, with a few hosts, VMs
// and migrations to act on; its stops are recorded, not fatal.
func fuzzReplica(t *testing.T) (*FSM, *[]error) {
	f := New()
	stops := &[]error{}
	f.SetFailStop(func(err error) { *stops = append(*stops, err) })
	for _, e := range buildScenario().entries[:40] {
		f.Apply(&raft.Log{Type: e.Type, Index: e.Index, Data: e.Data})
	}
	if len(*stops) > 0 {
		t.Fatalf("the seed state stopped the replica: %v", (*stops)[0])
	}
	return f, stops
}

// FuzzApply: two replicas fed the same entry end identical (state, events,
// result), whatever the bytes; Apply never panics, and what it leaves
// passes Check.
func FuzzApply(f *testing.F) {
	fuzzSeeds(f, true)
	f.Add([]byte{byte(CmdFinish), '{', '}'})
	// Placement's commands, which the recorded fixtures predate.
	no := false
	for _, c := range []struct {
		t CommandType
		p any
	}{
		{CmdSetVM, SetVM{VM: "vm1", Migratable: &no, At: t0}},
		{CmdCreateAffinity, CreateAffinity{Name: "r", Kind: AffinityApart, Hard: true, VMs: []string{"vm1", "vm2"}, At: t0}},
		{CmdCreateAffinity, CreateAffinity{Name: "r", Kind: AffinityHostAvoid, VMs: []string{"vm1"}, Hosts: []string{"h2"}, At: t0}},
		{CmdDeleteAffinity, DeleteAffinity{Name: "r", At: t0}},
	} {
		b, err := Encode(c.t, c.p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _ := fuzzReplica(t)
		b, _ := fuzzReplica(t)
		ra := a.Apply(&raft.Log{Type: raft.LogCommand, Index: 1000, Data: data}).(Result)
		rb := b.Apply(&raft.Log{Type: raft.LogCommand, Index: 1000, Data: data}).(Result)
		if (ra.Err == nil) != (rb.Err == nil) || (ra.Err != nil && ra.Err.Error() != rb.Err.Error()) {
			t.Fatalf("results differ: %v / %v", ra.Err, rb.Err)
		}
		sa, _ := json.Marshal(a.State())
		sb, _ := json.Marshal(b.State())
		ea, _ := json.Marshal(eventsOf(a))
		eb, _ := json.Marshal(eventsOf(b))
		if !bytes.Equal(sa, sb) || !bytes.Equal(ea, eb) {
			t.Fatal("replicas fed the same entry differ")
		}
		if err := a.State().Check(); err != nil {
			t.Fatalf("after %q: %v", data, err)
		}
	})
}

func eventsOf(f *FSM) []Event {
	evs, _ := f.Events(EventQuery{})
	return evs
}

// FuzzValidate: Validate never panics, and an entry it accepts never stops
// a replica of this version: a validated command always decodes.
func FuzzValidate(f *testing.F) {
	fuzzSeeds(f, true)
	f.Fuzz(func(t *testing.T, data []byte) {
		if Validate(data) != nil {
			return
		}
		r, stops := fuzzReplica(t)
		res := r.Apply(&raft.Log{Type: raft.LogCommand, Index: 1000, Data: data}).(Result)
		if len(*stops) > 0 || errors.Is(res.Err, ErrStopped) || errors.Is(res.Err, ErrMalformed) {
			t.Fatalf("an entry Validate accepts stopped the replica: %q: %v", data, res.Err)
		}
	})
}

// FuzzRestore: Restore never panics; a snapshot it refuses leaves the
// state as it was, one it takes passes Check and round-trips.
func FuzzRestore(f *testing.F) {
	fuzzSeeds(f, false)
	f.Add([]byte("null"))
	f.Add([]byte(`{"format":2,"state":{"hosts":{"h1":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _ := fuzzReplica(t)
		before, _ := json.Marshal(r.State())
		if err := r.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if after, _ := json.Marshal(r.State()); !bytes.Equal(before, after) {
				t.Fatalf("a refused snapshot changed the state: %v", err)
			}
			return
		}
		if err := r.State().Check(); err != nil {
			t.Fatalf("a restored state fails Check: %v", err)
		}
		g := New()
		if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, r)))); err != nil {
			t.Fatalf("a restored state does not restore again: %v", err)
		}
	})
}
