package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRestoreRefusesBadSnapshots: a snapshot that is null, empty, of an
// unknown format or inconsistent is refused, and the replica keeps its
// state (today `null` wiped it and a null host panicked the FSM).
func TestRestoreRefusesBadSnapshots(t *testing.T) {
	f := cluster3(t, 2)
	must(t, f, CmdEnqueue, Enqueue{VM: "vm1", At: t0})
	good := string(persist(t, f))
	cases := map[string]string{
		"empty":                  "",
		"null":                   "null",
		"format 2 without state": `{"format":2}`,
		"format 2 null state":    `{"format":2,"state":null}`,
		"newer format":           `{"format":3,"state":{}}`,
		"format 0":               `{"format":0,"state":{}}`,
		"not JSON":               "{not json",
		"trailing data":          good + good,
		"unknown field":          strings.Replace(good, `"seq":`, `"evil":1,"seq":`, 1),
		"null host":              strings.Replace(good, `"hosts":{`, `"hosts":{"hx":null,`, 1),
		"host key mismatch":      strings.Replace(good, `"hosts":{`, `"hosts":{"hx":{"name":"hy","state":"Up"},`, 1),
		"null VM":                strings.Replace(good, `"vms":{`, `"vms":{"vx":null,`, 1),
		"queued ID missing":      strings.Replace(good, `"queue":[`, `"queue":["m99",`, 1),
		"migration beyond seq":   strings.Replace(good, `"seq":1`, `"seq":0`, 1),
		"bare null host":         `{"hosts":{"h1":null}}`,
	}
	for name, snap := range cases {
		t.Run(name, func(t *testing.T) {
			before, _ := json.Marshal(f.State())
			changed := f.Changed()
			err := f.Restore(io.NopCloser(strings.NewReader(snap)))
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("got %v, want ErrBadSnapshot", err)
			}
			after, _ := json.Marshal(f.State())
			if !bytes.Equal(before, after) {
				t.Fatal("a refused snapshot changed the state")
			}
			select {
			case <-changed:
				t.Fatal("a refused snapshot signalled a change")
			default:
			}
		})
	}
	if err := f.Restore(io.NopCloser(strings.NewReader(good))); err != nil {
		t.Fatalf("the good snapshot: %v", err)
	}
}

// TestSnapshotFormats: this version writes format 2 and reads the bare
// state of format 1 alike.
func TestSnapshotFormats(t *testing.T) {
	f := cluster3(t, 2)
	b := persist(t, f)
	var head struct {
		Format int             `json:"format"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Format != SnapshotFormat || len(head.State) == 0 {
		t.Fatalf("snapshot head: format %d, %d bytes of state, %v", head.Format, len(head.State), err)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(head.State))); err != nil {
		t.Fatalf("bare (format 1) state: %v", err)
	}
	a, _ := json.Marshal(f.State())
	c, _ := json.Marshal(g.State())
	if !bytes.Equal(a, c) {
		t.Fatalf("format 1 restore differs:\n%s\n%s", a, c)
	}
}

// TestInvariantsHoldUnderRandomCommands: Check must accept every state
// Apply can reach, or Restore would refuse a replica's own snapshot. Random
// sequences of commands (most of them refused) are applied and the state
// checked after each; the snapshot then restores to the same state.
func TestInvariantsHoldUnderRandomCommands(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		f := cluster3(t, 4)
		must(t, f, CmdUpsertHost, UpsertHost{Facts: host("h4", "c2", 8192)})
		for step := 0; step < 400; step++ {
			ct, p := randomCommand(r, f.State())
			run(t, f, ct, p)
			if err := f.State().Check(); err != nil {
				t.Fatalf("seed %d step %d after %s %+v: %v", seed, step, ct, p, err)
			}
		}
		g := New()
		if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		a, _ := json.Marshal(f.State())
		b, _ := json.Marshal(g.State())
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: restored state differs", seed)
		}
	}
}

// randomCommand picks a command over the state's objects (and some that
// do not exist), as a mesh under faults would write them.
func randomCommand(r *rand.Rand, s *State) (CommandType, any) {
	hosts := []string{"h1", "h2", "h3", "h4", "h5"}
	vms := []string{"vm1", "vm2", "vm3", "vm4", "vm5", "vm6"}
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	mig := "m" + strconv.Itoa(1+r.IntN(int(s.Seq)+2))
	attempt := 1 + r.IntN(2)
	at := t0.Add(time.Duration(r.IntN(1000)) * time.Second)
	finals := []MigrationState{MigSucceeded, MigFailed, MigCancelled}
	switch r.IntN(14) {
	case 0:
		return CmdSetHostState, SetHostState{Host: pick(hosts), State: []HostState{HostUp, HostDown, HostLeft, HostNonOperational}[r.IntN(4)]}
	case 1:
		return CmdRemoveHost, RemoveHost{Host: pick(hosts)}
	case 2:
		h := pick(hosts)
		var list []VM
		for _, v := range vms {
			if r.IntN(3) == 0 {
				list = append(list, testVM(v, []string{VMRunning, VMPaused, VMShutoff}[r.IntN(3)]))
			}
		}
		return CmdSyncVMs, SyncVMs{Host: h, VMs: list}
	case 3, 4:
		dest := ""
		if r.IntN(2) == 0 {
			dest = pick(hosts)
		}
		return CmdEnqueue, Enqueue{VM: pick(vms), Dest: dest, At: at}
	case 5, 6:
		return CmdGrant, Grant{ID: mig, Dest: pick(hosts), At: at}
	case 7:
		return CmdProgress, ProgressUpdate{ID: mig, Attempt: attempt, Progress: Progress{Percent: float64(r.IntN(100))}}
	case 8, 9:
		return CmdFinish, Finish{ID: mig, Attempt: attempt, State: finals[r.IntN(3)], Retry: r.IntN(2) == 0, At: at}
	case 10:
		return CmdCancel, Cancel{ID: mig, At: at}
	case 11:
		return CmdStartDrain, StartDrain{Host: pick(hosts), At: at}
	case 12:
		return CmdEndDrain, EndDrain{Host: pick(hosts), State: []string{DrainCancelled, DrainStuck}[r.IntN(2)], At: at}
	default:
		return CmdActivate, Activate{Host: pick(hosts)}
	}
}
