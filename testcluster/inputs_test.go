package testcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate/sim"
	"github.com/hostmesh/hostmesh/node"
)

// rawAPI sends one request as is (its own Content-Type, any bytes) to the
// node at addr, verifying it with the cluster's CA; it returns the status,
// the headers and the JSON error's message, if any.
func (c *Cluster) rawAPI(t *testing.T, addr, method, path, ct string, body []byte) (int, http.Header, string) {
	t.Helper()
	scheme, tr := "http://", &http.Transport{}
	if c.CA != nil {
		scheme = "https://"
		pool := x509.NewCertPool()
		pool.AddCert(c.CA.Cert)
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, scheme+addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	// As an operator with the cluster's management token: the input rules
	// apply past the ACL check.
	req.Header.Set("Authorization", "Bearer "+c.ManagementToken)
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: %d with a body that is not a JSON error: %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header, e.Error
}

// TestAPIInputRules: every rule of node/decode.go, against a real node.
// Each bad request is refused with its status and a JSON error naming the
// field or parameter, and none of them changed anything: no drain, no
// migration, the host still a member, the cluster's settings as they were.
// An empty or null body on /v1/leave made a host drain and leave, and an
// empty PUT reset a cluster's limits to the defaults.
func TestAPIInputRules(t *testing.T) {
	c := New(t, Options{Hosts: 2, VMsPerHost: 1})
	l := c.Leader(10 * time.Second)
	c.waitVMs(2)
	addr := l.APIAddr()
	// A cluster setting away from its default, which an empty PUT reset.
	cl, err := c.Client(addr).Cluster(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	cl.MaxIncoming = 3
	if _, err := c.Client(addr).SetCluster(context.Background(), cl); err != nil {
		t.Fatal(err)
	}

	const js = "application/json"
	big := append(append([]byte(`{"reason":"`), bytes.Repeat([]byte("a"), 3<<20)...), `"}`...)
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		says                         string // the error names this
	}{
		// Required bodies.
		{"leave, empty body", "POST", "/v1/leave", js, "", 400, "empty"},
		{"leave, null", "POST", "/v1/leave", js, "null", 400, "not null"},
		{"leave, an array", "POST", "/v1/leave", js, "[]", 400, "not an array"},
		{"leave, negative timeout", "POST", "/v1/leave", js, `{"timeout_seconds":-1}`, 400, "timeout_seconds"},
		{"leave, absurd timeout", "POST", "/v1/leave", js, `{"timeout_seconds":9223372036}`, 400, "timeout_seconds"},
		{"drain, empty body", "POST", "/v1/hosts/h2/drain", js, "", 400, "empty"},
		{"drain, null", "POST", "/v1/hosts/h2/drain", js, "null", 400, "null"},
		{"activate, empty body", "POST", "/v1/hosts/h2/activate", js, "", 400, "empty"},
		{"cluster, empty PUT", "PUT", "/v1/clusters/c1", js, "", 400, "empty"},
		{"migrate, no vm", "POST", "/v1/migrations", js, `{}`, 400, `"vm"`},
		{"keyring install, no key", "POST", "/v1/keyring", js, `{}`, 400, `"key"`},
		// Strict decoding.
		{"drain, unknown field", "POST", "/v1/hosts/h2/drain", js, `{"polcy":"post-copy"}`, 400, `unknown field "polcy"`},
		{"drain, trailing data", "POST", "/v1/hosts/h2/drain", js, `{"reason":"a"} {"reason":"b"}`, 400, "trailing data"},
		{"drain, trailing junk", "POST", "/v1/hosts/h2/drain", js, `{}x`, 400, "trailing data"},
		{"drain, cut short", "POST", "/v1/hosts/h2/drain", js, `{"reason":`, 400, "cut short"},
		{"drain, wrong type", "POST", "/v1/hosts/h2/drain", js, `{"reason":5}`, 400, `"reason"`},
		{"drain, unknown policy", "POST", "/v1/hosts/h2/drain", js, `{"policy":"yolo"}`, 400, `"policy"`},
		{"drain, control character in reason", "POST", "/v1/hosts/h2/drain", js, `{"reason":"a\u0000b"}`, 400, "reason"},
		{"migrate, wrong type", "POST", "/v1/migrations", js, `{"vm":"vm-h1-0","bandwidth_mib":"fast"}`, 400, `"bandwidth_mib"`},
		{"migrate, absurd bandwidth", "POST", "/v1/migrations", js, `{"vm":"vm-h1-0","bandwidth_mib":99999999999}`, 400, `"bandwidth_mib"`},
		{"migrate, bad destination", "POST", "/v1/migrations", js, `{"vm":"vm-h1-0","to":"h 2"}`, 400, `"to"`},
		{"migrate, bad vm name", "POST", "/v1/migrations", js, `{"vm":"a/b"}`, 400, `"vm"`},
		{"cluster, another name", "PUT", "/v1/clusters/c1", js, `{"name":"c2"}`, 400, `"name"`},
		{"cluster, zero slots", "PUT", "/v1/clusters/c1", js, `{"max_outgoing":0}`, 400, "max outgoing"},
		{"cancel, a body", "POST", "/v1/migrations/m1/cancel", js, `{"force":true}`, 400, "no body"},
		// Size and Content-Type.
		{"drain, 3 MiB body", "POST", "/v1/hosts/h2/drain", js, string(big), 413, "limit"},
		{"drain, no Content-Type", "POST", "/v1/hosts/h2/drain", "", `{}`, 415, "Content-Type"},
		{"drain, a form", "POST", "/v1/hosts/h2/drain", "application/x-www-form-urlencoded", `{}`, 415, "Content-Type"},
		// Path parameters.
		{"drain of a bad host name", "POST", "/v1/hosts/h%20x/drain", js, `{}`, 400, "host name"},
		{"drain status of a bad host name", "GET", "/v1/hosts/-h/drain", "", "", 400, "host name"},
		{"a bad migration ID", "GET", "/v1/migrations/zz", "", "", 400, "migration ID"},
		{"cancel of a bad migration ID", "POST", "/v1/migrations/1/cancel", "", "", 400, "migration ID"},
		{"a bad cluster name", "GET", "/v1/clusters/c%2F1", "", "", 400, "cluster name"},
		// Query parameters.
		{"an unknown parameter", "GET", "/v1/migrations?limt=5", "", "", 400, `"limt"`},
		{"a parameter twice", "GET", "/v1/hosts?index=1&index=2", "", "", 400, "2 times"},
		{"a parameter on a route without any", "GET", "/v1/clusters/c1?x=1", "", "", 400, `"x"`},
		{"a malformed query", "GET", "/v1/hosts?index=%zz", "", "", 400, "query"},
		{"index not a number", "GET", "/v1/hosts?index=x", "", "", 400, `"index"`},
		{"index negative", "GET", "/v1/status?index=-1", "", "", 400, `"index"`},
		{"wait without index", "GET", "/v1/vms?wait=5s", "", "", 400, `"wait"`},
		{"wait negative", "GET", "/v1/vms?index=1&wait=-1s", "", "", 400, `"wait"`},
		{"wait not a duration", "GET", "/v1/drains?index=1&wait=soon", "", "", 400, `"wait"`},
		{"limit zero", "GET", "/v1/migrations?limit=0", "", "", 400, `"limit"`},
		{"limit absurd", "GET", "/v1/migrations?limit=99999999999999999999", "", "", 400, `"limit"`},
		{"state unknown", "GET", "/v1/migrations?state=Queued,Bogus", "", "", 400, `"state"`},
		{"state empty", "GET", "/v1/migrations?state=", "", "", 400, `"state"`},
		{"events: limit over the log", "GET", "/v1/events?limit=999999", "", "", 400, `"limit"`},
		{"events: after not a number", "GET", "/v1/events?after=x", "", "", 400, `"after"`},
		{"events: bad host", "GET", "/v1/events?host=a%20b", "", "", 400, `"host"`},
		{"events: wait zero", "GET", "/v1/events?wait=0s", "", "", 400, `"wait"`},
		{"events: last zero", "GET", "/v1/events?last=0", "", "", 400, `"last"`},
		{"events: last with after", "GET", "/v1/events?last=5&after=3", "", "", 400, `"last"`},
	}
	for _, tc := range cases {
		status, _, msg := c.rawAPI(t, addr, tc.method, tc.path, tc.ct, []byte(tc.body))
		if status != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %s %s: %d %q, want %d naming %s", tc.name, tc.method, tc.path, status, msg, tc.status, tc.says)
		}
	}

	// Nothing moved.
	l.FSM().Read(func(s *fsm.State) {
		if len(s.Drains) != 0 || len(s.Migrations) != 0 {
			t.Errorf("refused requests left %d drains and %d migrations", len(s.Drains), len(s.Migrations))
		}
		for _, h := range s.Hosts {
			if h.State != fsm.HostUp {
				t.Errorf("host %s is %s after refused requests, want Up", h.Name, h.State)
			}
		}
		if got := s.Cluster("c1"); got.MaxIncoming != 3 {
			t.Errorf("cluster c1 after refused PUTs: max incoming %d, want 3", got.MaxIncoming)
		}
	})
	select {
	case <-l.Left():
		t.Error("the leader left the mesh after refused leaves")
	default:
	}
	if st, err := c.Client(addr).Status(context.Background()); err != nil || st.GossipMembers != 2 {
		t.Errorf("after refused leaves: %+v, %v, want 2 gossip members", st, err)
	}

	// The well-formed requests of the same routes still pass, and a PUT
	// changes only the fields it names.
	if status, _, msg := c.rawAPI(t, addr, "PUT", "/v1/clusters/c1", "application/json; charset=utf-8", []byte(`{"max_outgoing":1}`)); status != 200 {
		t.Fatalf("PUT of max_outgoing alone: %d %s", status, msg)
	}
	l.FSM().Read(func(s *fsm.State) {
		got, def := s.Cluster("c1"), fsm.DefaultCluster("c1")
		if got.MaxOutgoing != 1 || got.MaxIncoming != 3 || got.MaxConcurrent != def.MaxConcurrent || got.Policy != def.Policy {
			t.Errorf("after a PUT of max_outgoing: %+v, want max_outgoing 1, max_incoming kept at 3, the rest as before", got)
		}
	})
	for _, path := range []string{"/v1/migrations?state=Queued,Running&limit=20", "/v1/events?after=0&host=h1&limit=5",
		"/v1/events?last=3&host=h1", "/v1/hosts?index=1&wait=10ms", "/v1/hosts/h1/drain/cancel"} {
		method := "GET"
		if strings.HasSuffix(path, "cancel") {
			method = "POST" // no drain to cancel: refused by the state, not the decoder
		}
		status, _, msg := c.rawAPI(t, addr, method, path, "", nil)
		if status == http.StatusBadRequest {
			t.Errorf("%s %s: refused as bad input: %s", method, path, msg)
		}
	}
}

// TestBlockingReadsAreCapped: a host serves at most MaxBlockingReads
// blocking reads at once; one more is answered at once with 429 and
// Retry-After while plain reads still pass, and a slot frees when a read
// ends.
func TestBlockingReadsAreCapped(t *testing.T) {
	c := New(t, Options{Hosts: 1})
	c.Leader(10 * time.Second)
	i := c.AddHost(func(cfg *node.Config) { cfg.MaxBlockingReads = 2 })
	addr := c.Node(i).APIAddr()
	c.WaitFor(20*time.Second, "h2 in the state", func() bool {
		var ok bool
		c.Node(i).FSM().Read(func(s *fsm.State) { ok = s.Hosts["h2"] != nil })
		return ok
	})

	// Two reads that wait past an index the mesh will not reach soon. Each
	// retries while it is refused (the probes below hold a slot briefly).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // before the cluster closes
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = Poll(30*time.Second, 5*time.Millisecond, func() bool {
				_, _, err := c.Client(addr).DrainStatus(ctx, "h1", &api.QueryOptions{WaitIndex: 1 << 60, WaitTime: time.Minute})
				var ae *api.Error
				if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
					return false
				}
				if ctx.Err() == nil {
					t.Errorf("a blocking read ended before the test did: %v", err)
				}
				return true
			})
		}()
	}
	var hdr http.Header
	var msg string
	c.WaitFor(10*time.Second, "a third blocking read refused with 429", func() bool {
		var status int
		status, hdr, msg = c.rawAPI(t, addr, "GET", "/v1/status?index=1152921504606846976&wait=10ms", "", nil)
		return status == http.StatusTooManyRequests
	})
	if hdr.Get("Retry-After") != "1" || !strings.Contains(msg, "blocking reads") {
		t.Errorf("429 with Retry-After %q and %q, want 1 and a message naming blocking reads", hdr.Get("Retry-After"), msg)
	}
	if status, _, msg := c.rawAPI(t, addr, "GET", "/v1/status", "", nil); status != 200 {
		t.Errorf("a plain read while blocking reads are full: %d %s", status, msg)
	}
	if status, _, _ := c.rawAPI(t, addr, "GET", "/v1/events?wait=10ms", "", nil); status != http.StatusTooManyRequests {
		t.Errorf("an event read with wait while blocking reads are full: %d, want 429", status)
	}
	cancel()
	wg.Wait()
	c.WaitFor(10*time.Second, "a blocking read served once the others ended", func() bool {
		status, _, _ := c.rawAPI(t, addr, "GET", "/v1/status?index=1152921504606846976&wait=10ms", "", nil)
		return status == http.StatusOK
	})
}

// TestInventoryLeavesOutAGuestTheMeshCannotHold: a guest the replicated
// state refuses (here 65 disks, over fsm.MaxDevices) is left out of its
// host's inventory, and the host's other guests are still reported. It
// got the whole inventory refused before, every VM of the host stale.
func TestInventoryLeavesOutAGuestTheMeshCannotHold(t *testing.T) {
	c := New(t, Options{Hosts: 1, VMsPerHost: 1})
	c.Leader(10 * time.Second)
	c.waitVMs(1)
	h1, _ := c.Reg.Host("h1")
	var disks []fsm.Disk
	for i := range fsm.MaxDevices + 1 {
		disks = append(disks, fsm.Disk{Target: "vd" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Source: "/shared/many.qcow2", Cache: "none"})
	}
	for _, spec := range []sim.VMSpec{{Name: "many-disks", MemoryMiB: 64, VCPUs: 1, Disks: disks}, {Name: "plain", MemoryMiB: 64, VCPUs: 1}} {
		if err := h1.Define(spec); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitFor(20*time.Second, "the plain guest in the state", func() bool {
		var err error
		c.Node(0).FSM().Read(func(s *fsm.State) { _, _, err = s.ResolveVM("plain") })
		return err == nil
	})
	c.Node(0).FSM().Read(func(s *fsm.State) {
		if _, _, err := s.ResolveVM("many-disks"); err == nil {
			t.Error("a guest of 65 disks entered the state")
		}
		if len(s.VMs) != 2 {
			t.Errorf("%d VMs in the state, want the 2 the mesh can hold", len(s.VMs))
		}
	})
}
