package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hostmesh/hostmesh/api"
)

// fakeMeshd answers the API routes meshctl calls with canned answers, so
// that every exit code and output format is driven without a mesh (the
// real mesh drives them too: testcluster's TestMeshctlConventions).
type fakeMeshd struct {
	mu sync.Mutex
	// reads counts GETs of one migration or drain: odd ones answer
	// Running (active), even ones the end.
	reads map[string]int
	block chan struct{} // closed at the end of the test: /v1/slow never answers before
}

func newFakeMeshd(t *testing.T) string {
	f := &fakeMeshd{reads: map[string]int{}, block: make(chan struct{})}
	srv := httptest.NewServer(f.routes())
	t.Cleanup(func() { close(f.block); srv.Close() })
	return srv.URL
}

func apiErr(w http.ResponseWriter, status int, kind, msg string, checks ...api.CheckResult) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Message: msg, Kind: kind, Checks: checks})
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeMeshd) next(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[key]++
	return f.reads[key]
}

var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

func (f *fakeMeshd) migration(id string, n int) api.Migration {
	m := api.Migration{ID: id, VM: "vm7", Source: "h1", Dest: "h2", Cluster: "c1", State: api.MigRunning, Policy: "minimal-downtime",
		CreatedAt: t0, StartedAt: t0, Progress: api.Progress{Percent: 40}}
	if n%2 == 0 {
		m.State, m.EndedAt, m.DowntimeMs, m.Progress.Percent = api.MigSucceeded, t0.Add(3*time.Second), 42, 100
		if id == "m2" {
			m.State, m.Reason = api.MigFailed, "destination refused the incoming migration"
		}
	}
	return m
}

func (f *fakeMeshd) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hosts", func(w http.ResponseWriter, r *http.Request) {
		answer(w, []api.HostView{{Host: api.Host{Name: "h1", Cluster: "c1", State: "Up", Networks: []api.Network{{Name: "vmnet", VLAN: 100}}}, RaftRole: "leader"}})
	})
	mux.HandleFunc("GET /v1/vms", func(w http.ResponseWriter, r *http.Request) { answer(w, []api.VM{{Name: "vm7", Host: "h1"}}) })
	mux.HandleFunc("GET /v1/clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "c1" {
			apiErr(w, 404, api.KindNotFound, "no such cluster \""+r.PathValue("name")+"\" (known: [c1])")
			return
		}
		answer(w, api.Cluster{Name: "c1", MaxOutgoing: 2, MaxIncoming: 2, MaxConcurrent: 5, BandwidthMode: "fixed", Policy: "minimal-downtime"})
	})
	mux.HandleFunc("POST /v1/migrations", func(w http.ResponseWriter, r *http.Request) {
		var req api.MigrateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch req.VM {
		case "vm7":
			answer(w, api.MigrateResponse{ID: "m1", Placement: "h2"})
		case "vm8": // fails once running
			answer(w, api.MigrateResponse{ID: "m2", Placement: "h2"})
		case "pinned":
			apiErr(w, 409, api.KindRefused, "migration refused", api.CheckResult{Name: "migratable", Message: "pinned by an operator"})
		case "leaderless":
			apiErr(w, 503, api.KindNoLeader, "no raft leader: forward to leader h1 at 10.0.0.11:7300: connection refused")
		case "forbidden":
			apiErr(w, 403, api.KindForbidden, "permission denied: operator right needed to migrate (token:ci has read)")
		default:
			apiErr(w, 404, api.KindNotFound, "no such VM \""+req.VM+"\"")
		}
	})
	mux.HandleFunc("GET /v1/migrations/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		w.Header().Set("X-Raft-Index", "7")
		answer(w, f.migration(id, f.next(id)))
	})
	mux.HandleFunc("POST /v1/migrations/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		apiErr(w, 404, api.KindNotFound, "no such migration \""+r.PathValue("id")+"\"")
	})
	mux.HandleFunc("GET /v1/migrations", func(w http.ResponseWriter, r *http.Request) {
		answer(w, []api.Migration{f.migration("m5", 2)})
	})
	mux.HandleFunc("POST /v1/hosts/{name}/drain", func(w http.ResponseWriter, r *http.Request) {
		answer(w, api.HostMigrations{Host: r.PathValue("name"), Migrations: []string{"m5"}})
	})
	mux.HandleFunc("GET /v1/hosts/{name}/drain", func(w http.ResponseWriter, r *http.Request) {
		d := api.Drain{Host: "h1", State: api.DrainActive, CreatedAt: t0.Add(-time.Second)}
		if f.next("drain")%2 == 0 {
			d.State, d.Moved = api.DrainDone, map[string]string{"vm7": "h2"}
		}
		w.Header().Set("X-Raft-Index", "9")
		answer(w, d)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		<-f.block // a meshd that accepted the connection and never answers
	})
	return mux
}

func ctl(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(append([]string{"meshctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExitCodes drives every exit code of the table (exitcodes.go, README,
// meshctl --help) through the command line.
func TestExitCodes(t *testing.T) {
	addr := newFakeMeshd(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := "http://" + closed.Addr().String()
	closed.Close()

	cases := []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"listing", []string{"--addr", addr, "hosts"}, exitOK, ""},
		{"migration queued", []string{"--addr", addr, "migrate", "vm7"}, exitOK, ""},
		{"refused by a check", []string{"--addr", addr, "migrate", "pinned"}, exitFailed, "pinned by an operator"},
		{"no right", []string{"--addr", addr, "migrate", "forbidden"}, exitFailed, "operator right needed"},
		{"migration failed while waited on", []string{"--addr", addr, "migrate", "vm8", "--wait"}, exitFailed, "destination refused"},
		{"unknown command", []string{"--addr", addr, "hots"}, exitUsage, `unknown command "hots"`},
		{"unknown subcommand", []string{"--addr", addr, "raft", "peer"}, exitUsage, `unknown command "peer"`},
		{"unknown flag", []string{"--addr", addr, "hosts", "--jsn"}, exitUsage, "flag provided but not defined: -jsn"},
		{"unknown global flag", []string{"--adr", addr, "hosts"}, exitUsage, "flag provided but not defined: -adr"},
		{"bad flag value", []string{"--addr", addr, "migrate", "vm7", "--bandwidth", "fast"}, exitUsage, "invalid value"},
		{"missing argument", []string{"--addr", addr, "migrate"}, exitUsage, "exactly one VM"},
		{"bad output format", []string{"--addr", addr, "hosts", "-o", "xml"}, exitUsage, "table, json and yaml"},
		{"yaml cannot stream", []string{"--addr", addr, "migrate", "vm7", "--wait", "-o", "yaml"}, exitUsage, "use -o json"},
		{"second spelling of cancel is gone", []string{"--addr", addr, "migrate", "--cancel", "m1"}, exitUsage, "-cancel"},
		{"unknown VM", []string{"--addr", addr, "migrate", "vm9"}, exitUsage, `no such VM "vm9"`},
		{"unknown cluster", []string{"--addr", addr, "cluster", "c2"}, exitUsage, `no such cluster "c2"`},
		{"unknown migration", []string{"--addr", addr, "cancel", "m99"}, exitUsage, `no such migration "m99"`},
		{"bad timeout", []string{"--addr", addr, "--timeout", "-1s", "hosts"}, exitUsage, "must be positive"},
		{"unreachable", []string{"--addr", closedAddr, "hosts"}, exitUnreachable, "cannot reach meshd"},
		{"no answer within --timeout", []string{"--addr", addr, "--timeout", "300ms", "status"}, exitUnreachable, "no answer within --timeout"},
		{"no leader (through a follower)", []string{"--addr", addr, "migrate", "leaderless"}, exitUnreachable, "no raft leader"},
	}
	for _, c := range cases {
		code, _, errOut := ctl(c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%s: meshctl %s: exit %d, want %d; stderr %q (want %q in it)", c.name, strings.Join(c.args, " "), code, c.code, errOut, c.msg)
		}
	}
	// The table is in the help, as in the README.
	_, out, _ := ctl("--help")
	for _, line := range []string{"0  success", "1  refused or failed", "2  usage", "3  meshd unreachable"} {
		if !strings.Contains(out, line) {
			t.Errorf("meshctl --help lacks the exit code line %q", line)
		}
	}
}

// ndjsonLines parses out line by line: every line one JSON object, nothing
// else.
func ndjsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("stdout line %q is not one JSON object: %v\nstdout:\n%s", sc.Text(), err, out)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("no NDJSON on stdout")
	}
	return objs
}

func eventsOf(objs []map[string]any) []string {
	var evs []string
	for _, o := range objs {
		evs = append(evs, o["event"].(string))
	}
	return evs
}

func TestWaitJSONIsNDJSON(t *testing.T) {
	addr := newFakeMeshd(t)
	for _, flag := range []string{"--json", "-o=json"} {
		code, out, errOut := ctl("--addr", addr, "migrate", "vm7", "--wait", flag)
		if code != 0 {
			t.Fatalf("migrate --wait %s: exit %d: %s", flag, code, errOut)
		}
		objs := ndjsonLines(t, out)
		evs := eventsOf(objs)
		if evs[0] != "queued" || evs[len(evs)-1] != "end" || len(evs) < 3 {
			t.Fatalf("migrate events %v, want queued, progress…, end", evs)
		}
		last := objs[len(objs)-1]["migration"].(map[string]any)
		if last["state"] != "Succeeded" || last["downtime_ms"] != 42.0 {
			t.Errorf("end event's migration %v", last)
		}
		// The text is on stderr, the closing line included.
		if !strings.Contains(errOut, "queued for vm7") || !strings.Contains(errOut, "moved h1 → h2") {
			t.Errorf("stderr lacks the text lines: %q", errOut)
		}
	}
	code, out, errOut := ctl("--addr", addr, "drain", "h1", "--wait", "--json")
	if code != 0 {
		t.Fatalf("drain --wait --json: exit %d: %s", code, errOut)
	}
	objs := ndjsonLines(t, out)
	if evs := eventsOf(objs); strings.Join(evs, ",") != "queued,migration,end" {
		t.Fatalf("drain events %v, want queued, migration, end", evs)
	}
	if d := objs[2]["drain"].(map[string]any); d["state"] != "done" {
		t.Errorf("end event's drain %v", d)
	}
	if !strings.Contains(errOut, "in Maintenance") {
		t.Errorf("stderr lacks the drain report: %q", errOut)
	}
}

func TestOutputFormats(t *testing.T) {
	addr := newFakeMeshd(t)
	code, out, errOut := ctl("--addr", addr, "hosts", "-o", "yaml")
	if code != 0 {
		t.Fatalf("hosts -o yaml: exit %d: %s", code, errOut)
	}
	var hosts []map[string]any
	if err := yaml.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 1 || hosts[0]["name"] != "h1" || hosts[0]["raft_role"] != "leader" {
		t.Fatalf("hosts -o yaml: %v %v\n%s", err, hosts, out)
	}
	if !strings.HasPrefix(out, "- name: h1\n") {
		t.Errorf("yaml keeps the API's field order (name first):\n%s", out)
	}
	for _, args := range [][]string{{"hosts", "-o", "json"}, {"hosts", "--format", "json"}, {"hosts", "--json"}, {"cluster", "c1", "-o", "json"}} {
		code, out, errOut := ctl(append([]string{"--addr", addr}, args...)...)
		if code != 0 || !json.Valid([]byte(out)) {
			t.Errorf("%v: exit %d, stdout not JSON: %q %s", args, code, out, errOut)
		}
	}
	// Every command that lists takes -o.
	app := App(&bytes.Buffer{}, &bytes.Buffer{})
	for _, name := range []string{"hosts", "vms", "migrations", "status", "members", "clusters", "events", "cluster", "migrate", "drain"} {
		has := false
		for _, f := range app.Command(name).Flags {
			has = has || f == outputFlag
		}
		if !has {
			t.Errorf("%s has no -o", name)
		}
	}
}

func TestCompletionListsNames(t *testing.T) {
	addr := newFakeMeshd(t)
	for cmd, want := range map[string]string{"migrate": "vm7", "drain": "h1", "activate": "h1"} {
		code, out, _ := ctl("--addr", addr, cmd, "--generate-bash-completion")
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("%s completion: exit %d, %q, want %q", cmd, code, out, want)
		}
	}
	code, out, _ := ctl("--addr", addr, "raft", "--generate-bash-completion")
	if code != 0 || strings.TrimSpace(out) != "peers" {
		t.Errorf("raft completion: exit %d, %q", code, out)
	}
}
