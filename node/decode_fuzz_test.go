package node

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// fuzzAt is the time of the commands the fuzz targets build.
var fuzzAt = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// mustBeBadInput fails unless err is a 4xx API error with a message.
func mustBeBadInput(t *testing.T, what string, err error) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Message == "" {
		t.Fatalf("%s: %v (%T): not a 4xx API error", what, err, err)
	}
}

// mustValidate fails unless the command fsm.Validate accepts.
func mustValidate(t *testing.T, what string, ct fsm.CommandType, cmd any) {
	t.Helper()
	data, err := fsm.Encode(ct, cmd)
	if err != nil {
		t.Fatalf("%s: encode %+v: %v", what, cmd, err)
	}
	if err := fsm.Validate(data); err != nil {
		t.Fatalf("%s: the decoder accepted what becomes an invalid command: %v\n%s", what, err, data)
	}
}

// FuzzAPIBodies feeds each write route's decoder any body: it never
// panics, and either refuses with a 4xx naming why or returns a request
// whose command fsm.Validate accepts (so bad input is a 400 from the
// decoder, never a surprise further on). A PUT of a cluster never writes
// into the current settings it starts from.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{} {}`, `{"vm":"web"}`, `{"vm":"web","to":"h2","policy":"post-copy","bandwidth_mib":100,"dry_run":true}`,
		`{"vm":"4dea22b3-1d52-d8f3-2516-782e98ab3fa0"}`, `{"vm":"a/b"}`, `{"policy":"suspend-workload","reason":"maintenance"}`,
		`{"return":true}`, `{"timeout_seconds":60}`, `{"timeout_seconds":-1}`, `{"max_outgoing":3,"required_networks":["vmnet"]}`,
		`{"name":"c1","max_outgoing":2,"max_incoming":2,"max_concurrent":5,"bandwidth_mode":"auto","bandwidth_mib":52,"migration_net_mib":1000,"policy":"minimal-downtime","cpu_baseline":["aes"],"migration_transport":"plain"}`,
		`{"key":"` + strings.Repeat("A", 43) + `="}`, `{"vm":"x","VM":"y"}`, `{"reason":"\u0000"}`,
	} {
		for route := range byte(6) {
			f.Add(route, "application/json", []byte(s))
		}
	}
	f.Add(byte(0), "text/plain", []byte(`{"vm":"web"}`))
	f.Add(byte(1), "application/json; charset=utf-8", []byte(`{}`))
	f.Fuzz(func(t *testing.T, route byte, ct string, body []byte) {
		switch route % 6 {
		case 0:
			req, err := decodeMigrate(ct, bytes.NewReader(body))
			if err != nil {
				mustBeBadInput(t, "migrate", err)
				return
			}
			mustValidate(t, "migrate", fsm.CmdEnqueue, fsm.Enqueue{VM: req.VM, Dest: req.To, Policy: req.Policy,
				BandwidthMiB: req.BandwidthMiB, Actor: "anonymous", At: fuzzAt})
		case 1:
			req, err := decodeDrain(ct, bytes.NewReader(body))
			if err != nil {
				mustBeBadInput(t, "drain", err)
				return
			}
			mustValidate(t, "drain", fsm.CmdStartDrain, fsm.StartDrain{Host: "h1", Reason: req.Reason, Policy: req.Policy,
				Actor: "anonymous", At: fuzzAt})
		case 2:
			if _, err := decodeActivate(ct, bytes.NewReader(body)); err != nil {
				mustBeBadInput(t, "activate", err)
			}
		case 3:
			req, err := decodeLeave(ct, bytes.NewReader(body))
			if err != nil {
				mustBeBadInput(t, "leave", err)
				return
			}
			if d := time.Duration(req.TimeoutSeconds) * time.Second; d < 0 || d > maxLeaveTimeout {
				t.Fatalf("leave accepted a timeout of %d s", req.TimeoutSeconds)
			}
		case 4:
			cur := fsm.DefaultCluster("c1")
			cur.RequiredNetworks, cur.CPUBaseline = []string{"vmnet", "mig"}, []string{"aes"}
			keep := cur
			keep.RequiredNetworks, keep.CPUBaseline = []string{"vmnet", "mig"}, []string{"aes"}
			c, err := decodeCluster(ct, bytes.NewReader(body), cur)
			if !reflect.DeepEqual(cur, keep) {
				t.Fatalf("decoding a PUT changed the settings it started from: %+v", cur)
			}
			if err != nil {
				mustBeBadInput(t, "cluster", err)
				return
			}
			if c.Name != "c1" {
				t.Fatalf("a PUT of c1 stored cluster %q", c.Name)
			}
			mustValidate(t, "cluster", fsm.CmdSetCluster, fsm.SetCluster{Cluster: c, Actor: "anonymous", At: fuzzAt})
		case 5:
			var req api.KeyringRequest
			if err := decodeJSON(ct, bytes.NewReader(body), "keyring install", &req); err != nil {
				mustBeBadInput(t, "keyring", err)
			}
		}
	})
}

// FuzzAPIQuery feeds any query string to each route's query parsing: it
// never panics, refuses with a 400 naming a parameter, or accepts values
// within their ranges that pass the state's rules.
func FuzzAPIQuery(f *testing.F) {
	for _, s := range []string{
		"", "index=5", "index=5&wait=30s", "wait=5s", "index=x", "index=1&index=2", "index=18446744073709551616",
		"state=Queued,Running&limit=20", "state=", "limit=0", "limit=-1", "limt=5", "%zz", "index=1&wait=-1s",
		"after=3&host=h1&vm=web&limit=500&wait=30s", "host=a%20b", "vm=a%2Fb", "wait=1000h", "index=1;wait=1s",
	} {
		for route := range byte(4) {
			f.Add(route, s)
		}
	}
	f.Fuzz(func(t *testing.T, route byte, raw string) {
		switch route % 4 {
		case 0: // a listing: index and wait
			q, err := readQuery(raw, blockingParams...)
			if err != nil {
				mustBeBadInput(t, "query", err)
				return
			}
			checkBlocking(t, q)
		case 1: // the migrations listing
			q, err := readQuery(raw, "index", "wait", "state", "limit")
			if err != nil {
				mustBeBadInput(t, "query", err)
				return
			}
			states, limit, err := parseMigrationsQuery(q)
			if err != nil {
				mustBeBadInput(t, "migrations query", err)
				return
			}
			if limit < 0 || limit > maxListLimit || (limit == 0 && q.Has("limit")) {
				t.Fatalf("limit %d accepted from %q", limit, raw)
			}
			for st := range states {
				switch st {
				case fsm.MigQueued, fsm.MigRunning, fsm.MigSucceeded, fsm.MigFailed, fsm.MigCancelled:
				default:
					t.Fatalf("state %q accepted from %q", st, raw)
				}
			}
			checkBlocking(t, q)
		case 2: // the event log
			q, err := readQuery(raw, "after", "host", "vm", "limit", "wait")
			if err != nil {
				mustBeBadInput(t, "query", err)
				return
			}
			eq, wait, err := parseEventsQuery(q)
			if err != nil {
				mustBeBadInput(t, "events query", err)
				return
			}
			if eq.Limit < 1 || eq.Limit > fsm.MaxEvents || wait < 0 || wait > maxBlockingWait {
				t.Fatalf("events query %q: limit %d, wait %s accepted", raw, eq.Limit, wait)
			}
			if eq.Host != "" && fsm.CheckHostName("host", eq.Host) != nil || eq.VM != "" && fsm.CheckName("vm", eq.VM) != nil {
				t.Fatalf("events query %q: host %q, vm %q accepted", raw, eq.Host, eq.VM)
			}
		case 3: // a route that takes no parameter
			q, err := readQuery(raw)
			if err != nil {
				mustBeBadInput(t, "query", err)
				return
			}
			if len(q) != 0 {
				t.Fatalf("parameters %v accepted by a route that takes none", q)
			}
		}
	})
}

func checkBlocking(t *testing.T, q url.Values) {
	t.Helper()
	b, err := parseBlocking(q)
	if err != nil {
		mustBeBadInput(t, "blocking query", err)
		return
	}
	if b.blocking != q.Has("index") || (b.blocking && (b.wait <= 0 || b.wait > maxBlockingWait)) || (!b.blocking && q.Has("wait")) {
		t.Fatalf("blocking query %v read as %+v", q, b)
	}
}
