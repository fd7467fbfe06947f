package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// malformed are entries no leader of this version logs: Validate refuses
// each of them.
var malformed = map[string][]byte{
	"empty":         {},
	"unknown type":  append([]byte{100}, []byte(`{}`)...),
	"bad json":      append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":`)...),
	"unknown field": append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":"vm1","evil":1}`)...),
	"trailing data": append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":"vm1"}{"vm":"vm1"}`)...),
	"wrong type":    append([]byte{byte(CmdEnqueue)}, []byte(`{"vm":42}`)...),
}

// TestOldLogRefusesMalformedEntries: before the log's version reaches
// LogVersionValidated (a v1 log, whose leader logged junk unchecked) a
// malformed entry is a refused no-op, as v1 replicas applied it.
func TestOldLogRefusesMalformedEntries(t *testing.T) {
	f := New()
	f.SetFailStop(func(err error) { t.Fatalf("an old log's junk stopped the replica: %v", err) })
	must(t, f, CmdUpsertHost, UpsertHost{Facts: host("h1", "c1", 8192)})
	before := f.State()
	for name, data := range malformed {
		r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 10, Data: data}).(Result)
		if !errors.Is(r.Err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, r.Err)
		}
	}
	if !reflect.DeepEqual(before, f.State()) {
		t.Fatal("a malformed entry changed the state")
	}
}

// TestUnknownOrUndecodableEntryStopsTheReplica: once the log is validated
// by its leaders, an entry this replica cannot apply was written by a
// newer version; the replica stops at it with one error naming the entry,
// and applies nothing after it.
func TestUnknownOrUndecodableEntryStopsTheReplica(t *testing.T) {
	for name, data := range malformed {
		t.Run(name, func(t *testing.T) {
			f := New()
			var stops []error
			f.SetFailStop(func(err error) { stops = append(stops, err) })
			must(t, f, CmdLeaderElected, LeaderElected{Leader: "h1", Version: LogVersion, At: t0})
			must(t, f, CmdUpsertHost, UpsertHost{Facts: host("h1", "c1", 8192)})
			before := f.State()
			r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 42, Data: data}).(Result)
			var se *StopError
			if !errors.As(r.Err, &se) || !errors.Is(r.Err, ErrStopped) || se.Index != 42 {
				t.Fatalf("got %v, want a StopError at index 42", r.Err)
			}
			if len(stops) != 1 || stops[0] != r.Err {
				t.Fatalf("fail-stop called %d times (%v)", len(stops), stops)
			}
			if !strings.Contains(r.Err.Error(), "log entry 42") || !strings.Contains(r.Err.Error(), "upgrade this host") {
				t.Errorf("stop message %q does not name the entry and the remedy", r.Err)
			}
			// Nothing applies after the stop, not even a valid command.
			r = run(t, f, CmdUpsertHost, UpsertHost{Facts: host("h2", "c1", 8192)})
			if !errors.Is(r.Err, ErrStopped) {
				t.Fatalf("after the stop: %v", r.Err)
			}
			if !reflect.DeepEqual(before, f.State()) {
				t.Fatal("the state changed at or after the stop")
			}
		})
	}
}

// TestIgnorableUnknownCommandIsSkipped: the flag lets an older replica
// skip a newer command instead of stopping; a known command with the flag
// applies as usual.
func TestIgnorableUnknownCommandIsSkipped(t *testing.T) {
	f := newFSM(t)
	before := f.State()
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 5, Data: []byte{byte(IgnorableFlag | 99), '{', '}'}}).(Result)
	if r.Err != nil || !reflect.DeepEqual(before, f.State()) {
		t.Fatalf("ignorable unknown command: %v, state changed: %v", r.Err, !reflect.DeepEqual(before, f.State()))
	}
	data := mustEncode(t, CmdUpsertHost, UpsertHost{Facts: host("h9", "c1", 1024)})
	data[0] |= byte(IgnorableFlag)
	if r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 6, Data: data}).(Result); r.Err != nil {
		t.Fatal(r.Err)
	}
	if f.State().Hosts["h9"] == nil {
		t.Fatal("a known command flagged ignorable was not applied")
	}
	if err := Validate([]byte{byte(IgnorableFlag | 99), '{', '}'}); err != nil {
		t.Errorf("Validate of an ignorable unknown command: %v", err)
	}
	if err := Validate([]byte{byte(IgnorableFlag | 99), '{'}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Validate of an ignorable command that is not JSON: %v", err)
	}
}

// TestLeaderElectedNeverLowersTheVersion: a leader of an older version
// elected later must not bring the old rules back.
func TestLeaderElectedNeverLowersTheVersion(t *testing.T) {
	f := newFSM(t)
	must(t, f, CmdLeaderElected, LeaderElected{Leader: "h2", Version: 1, At: t0})
	if v := f.State().LogVersion; v != LogVersion {
		t.Fatalf("log version %d after an older leader, want %d", v, LogVersion)
	}
}

func TestEveryCommandHasAValidatorAndAName(t *testing.T) {
	for ct := range handlers {
		if validators[ct] == nil {
			t.Errorf("command %d has a handler but no validator", ct)
		}
		if strings.HasPrefix(ct.String(), "unknown") {
			t.Errorf("command %d has no name", ct)
		}
		if ct&IgnorableFlag != 0 {
			t.Errorf("command %d is registered with the ignorable flag", ct)
		}
	}
	for ct := range validators {
		if handlers[ct] == nil {
			t.Errorf("command %d has a validator but no handler", ct)
		}
	}
}
