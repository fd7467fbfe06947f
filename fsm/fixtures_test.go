package fsm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// The upgrade-safety fixtures of issue 10 (as rqlite replays data dirs of
// old versions). testdata/<version>/ holds a Raft log and a snapshot
// written by that version, and what the current version computes from
// them. Every version's directory is replayed by every later version.
//
//	go test ./fsm -run TestFixtures -fixtures.record=v2   write this version's log and snapshot (new directory only)
//	go test ./fsm -run TestFixtures -fixtures.update      rewrite expected.json after an intended change of the state
var (
	recordFixtures = flag.String("fixtures.record", "", "write this version's fixture log and snapshot into testdata/`DIR` (which must not exist)")
	updateFixtures = flag.Bool("fixtures.update", false, "rewrite every testdata/*/expected.json from the current code")
)

// fixtureMeta is meta.json: where the snapshot was taken.
type fixtureMeta struct {
	SnapshotIndex uint64 `json:"snapshot_index"`
	Note          string `json:"note"`
}

// fixtureResult is one entry's outcome as expected.json records it. Only
// the outcome and value are compared: refusal texts may be reworded.
type fixtureResult struct {
	Index   uint64          `json:"index"`
	Outcome string          `json:"outcome"` // ok, rejected, malformed, skipped
	Value   json.RawMessage `json:"value,omitempty"`
	Message string          `json:"message,omitempty"`
}

// fixtureExpected is expected.json.
type fixtureExpected struct {
	Results []fixtureResult `json:"results"`
	// Log is the state after the whole log, from an empty state.
	Log json.RawMessage `json:"state_after_log"`
	// Snapshot is the state restored from snapshot.bin.
	Snapshot json.RawMessage `json:"state_after_snapshot"`
	// Events is the event log after the whole log.
	Events json.RawMessage `json:"events_after_log"`
}

// fixtureFSM is an FSM whose fail-stop fails the test: no recorded entry
// may stop a replica of a later version.
func fixtureFSM(t *testing.T) *FSM {
	f := New()
	f.SetFailStop(func(err error) { t.Fatalf("a fixture entry stopped the replica: %v", err) })
	return f
}

// eventsJSON renders the whole event log.
func eventsJSON(t *testing.T, f *FSM) json.RawMessage {
	t.Helper()
	evs, _ := f.Events(EventQuery{})
	if evs == nil {
		evs = []Event{}
	}
	b, err := json.MarshalIndent(evs, "  ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeLog stores entries length-prefixed: index (8 bytes), Raft log type
// (1), data length (4), data; big-endian.
func writeLog(w io.Writer, entries []fixtureEntry) error {
	for _, e := range entries {
		var hdr [13]byte
		binary.BigEndian.PutUint64(hdr[0:8], e.Index)
		hdr[8] = byte(e.Type)
		binary.BigEndian.PutUint32(hdr[9:13], uint32(len(e.Data)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(e.Data); err != nil {
			return err
		}
	}
	return nil
}

func readLog(b []byte) ([]fixtureEntry, error) {
	var out []fixtureEntry
	for len(b) > 0 {
		if len(b) < 13 {
			return nil, fmt.Errorf("log: truncated header after entry %d", len(out))
		}
		n := binary.BigEndian.Uint32(b[9:13])
		if uint64(len(b)-13) < uint64(n) {
			return nil, fmt.Errorf("log: entry %d truncated", binary.BigEndian.Uint64(b[0:8]))
		}
		e := fixtureEntry{Index: binary.BigEndian.Uint64(b[0:8]), Type: raft.LogType(b[8])}
		if n > 0 {
			e.Data = bytes.Clone(b[13 : 13+n])
		}
		out = append(out, e)
		b = b[13+n:]
	}
	return out, nil
}

// recordFixture writes the scenario's log and the snapshot taken at its
// snapAt into dir, which must be new: a recorded version is never
// overwritten.
func recordFixture(t *testing.T, dir string) {
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("fixtures: %s exists; a version's fixtures are never re-recorded (pick a new directory)", dir)
	}
	b := buildScenario()
	f := fixtureFSM(t)
	var snap []byte
	for _, e := range b.entries {
		// This version's leaders validated every command (an ignorable
		// one of a newer version excepted).
		if e.Type == raft.LogCommand && e.Data[0]&byte(IgnorableFlag) == 0 {
			if err := Validate(e.Data); err != nil {
				t.Fatalf("fixtures: entry %d does not pass Validate: %v", e.Index, err)
			}
		}
		f.Apply(&raft.Log{Index: e.Index, Type: e.Type, Data: e.Data})
		if e.Index == b.snapAt {
			snap = persist(t, f)
		}
	}
	var log bytes.Buffer
	if err := writeLog(&log, b.entries); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.MarshalIndent(fixtureMeta{SnapshotIndex: b.snapAt,
		Note: "written by fsm's -fixtures.record from buildScenario; never edit by hand"}, "", "  ")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"log.bin": log.Bytes(), "snapshot.bin": snap, "meta.json": append(meta, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// persist returns the bytes a snapshot of f writes to its sink.
func persist(t *testing.T, f *FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := s.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func outcomeOf(r Result) (string, string) {
	switch {
	case r.Err == nil:
		return "ok", ""
	case errors.Is(r.Err, ErrRejected):
		return "rejected", r.Err.Error()
	case errors.Is(r.Err, ErrMalformed):
		return "malformed", r.Err.Error()
	}
	return "error", r.Err.Error()
}

// stateJSON renders a state the way expected.json keeps it, indented so
// that an intended change shows as a readable diff.
func stateJSON(t *testing.T, s *State) json.RawMessage {
	t.Helper()
	b, err := json.MarshalIndent(s, "  ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixtures replays every recorded version's log and snapshot: no entry
// may stop the replica, every entry must end as it did, the states must be
// the ones expected, and a replica restored from the snapshot and fed the
// rest of the log must end where the one that applied the whole log did,
// since that is what two replicas of one mesh do.
func TestFixtures(t *testing.T) {
	if *recordFixtures != "" {
		recordFixture(t, filepath.Join("testdata", *recordFixtures))
	}
	dirs, _ := filepath.Glob(filepath.Join("testdata", "v*"))
	if len(dirs) == 0 {
		t.Fatal("no fixtures in testdata/v*: the upgrade test has nothing to replay")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { replayFixture(t, dir) })
	}
}

func replayFixture(t *testing.T, dir string) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("fixture %s: %v", dir, err)
		}
		return b
	}
	entries, err := readLog(read("log.bin"))
	if err != nil {
		t.Fatalf("fixture %s: %v", dir, err)
	}
	var meta fixtureMeta
	if err := json.Unmarshal(read("meta.json"), &meta); err != nil {
		t.Fatalf("fixture %s meta.json: %v", dir, err)
	}
	snap := read("snapshot.bin")

	var got fixtureExpected
	full := fixtureFSM(t)
	for _, e := range entries {
		res, ok := full.Apply(&raft.Log{Index: e.Index, Type: e.Type, Data: e.Data}).(Result)
		if !ok {
			t.Fatalf("entry %d: Apply returned %T, want Result", e.Index, res)
		}
		fr := fixtureResult{Index: e.Index}
		if e.Type != raft.LogCommand {
			fr.Outcome = "skipped"
		} else {
			fr.Outcome, fr.Message = outcomeOf(res)
			if res.Err == nil && res.Value != nil {
				fr.Value, _ = json.Marshal(res.Value)
			}
		}
		got.Results = append(got.Results, fr)
	}
	got.Log = stateJSON(t, full.State())
	got.Events = eventsJSON(t, full)

	restored := fixtureFSM(t)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore %s/snapshot.bin: %v", dir, err)
	}
	got.Snapshot = stateJSON(t, restored.State())
	for _, e := range entries {
		if e.Index > meta.SnapshotIndex {
			restored.Apply(&raft.Log{Index: e.Index, Type: e.Type, Data: e.Data})
		}
	}
	if a, b := stateJSON(t, full.State()), stateJSON(t, restored.State()); !bytes.Equal(a, b) {
		t.Errorf("snapshot at %d + the rest of the log differs from the whole log:\n%s", meta.SnapshotIndex, diffLines(string(a), string(b)))
	}
	if a, b := eventsJSON(t, full), eventsJSON(t, restored); !bytes.Equal(a, b) {
		t.Errorf("snapshot at %d + the rest of the log records other events than the whole log:\n%s", meta.SnapshotIndex, diffLines(string(a), string(b)))
	}

	path := filepath.Join(dir, "expected.json")
	if *updateFixtures {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var want fixtureExpected
	if err := json.Unmarshal(read("expected.json"), &want); err != nil {
		t.Fatalf("%s: %v (write it with -fixtures.update)", path, err)
	}
	if len(want.Results) != len(got.Results) {
		t.Fatalf("%d results, want %d", len(got.Results), len(want.Results))
	}
	for i, w := range want.Results {
		g := got.Results[i]
		if g.Index != w.Index || g.Outcome != w.Outcome || !jsonEqual(g.Value, w.Value) {
			t.Errorf("entry %d: %s %s (%s), want %s %s (%s)", w.Index, g.Outcome, g.Value, g.Message, w.Outcome, w.Value, w.Message)
		}
	}
	if !jsonEqual(got.Log, want.Log) {
		t.Errorf("state after the log differs from %s (an intended change? -fixtures.update):\n%s", path, diffLines(string(want.Log), string(got.Log)))
	}
	if !jsonEqual(got.Events, want.Events) {
		t.Errorf("events after the log differ from %s:\n%s", path, diffLines(string(want.Events), string(got.Events)))
	}
	if !jsonEqual(got.Snapshot, want.Snapshot) {
		t.Errorf("state restored from the snapshot differs from %s:\n%s", path, diffLines(string(want.Snapshot), string(got.Snapshot)))
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// diffLines shows the first lines where two renderings differ.
func diffLines(want, got string) string {
	var x, y any
	if json.Unmarshal([]byte(want), &x) == nil && json.Unmarshal([]byte(got), &y) == nil {
		a, _ := json.MarshalIndent(x, "", "  ")
		b, _ := json.MarshalIndent(y, "", "  ")
		want, got = string(a), string(b)
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(wl), len(gl)) && len(out) < 20; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			out = append(out, fmt.Sprintf("line %d: want %s\n         got  %s", i+1, strings.TrimSpace(w), strings.TrimSpace(g)))
		}
	}
	return strings.Join(out, "\n")
}
