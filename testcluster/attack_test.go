package testcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/pki"
)

// procMesh is a mesh of real meshd processes started the way the README
// says: a CA and a host certificate per host, a gossip key file, the
// initial management token file, sim hypervisors.
type procMesh struct {
	t     *testing.T
	certs *pki.MeshFiles
	token string
	names []string
	api   []string // API addresses
	host  []string // host port (Raft) addresses
}

func startProcMesh(t *testing.T, hosts, vmsPerHost int) *procMesh {
	t.Helper()
	bin := buildMeshd(t)
	ports, err := freePorts(3 * hosts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs, err := pki.NewMeshFiles(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile, tokenFile := filepath.Join(dir, "gossip.key"), filepath.Join(dir, "management.token")
	m := &procMesh{t: t, certs: certs, token: "attack-matrix-management-token-" + fmt.Sprint(time.Now().UnixNano())}
	if err := os.WriteFile(keyFile, []byte(gossip.GenerateKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(m.token), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < hosts; i++ {
		name := fmt.Sprintf("p%d", i+1)
		if _, _, err := certs.Host(pki.CertSpec{Name: name}); err != nil {
			t.Fatal(err)
		}
		tlsFlags, _ := certs.MeshdFlags(name)
		args := []string{"--name", name, "--cluster", "c1", "--data-dir", filepath.Join(dir, name),
			"--gossip-port", fmt.Sprint(ports[3*i]), "--raft-port", fmt.Sprint(ports[3*i+1]), "--api-port", fmt.Sprint(ports[3*i+2]),
			"--gossip-key-file", keyFile, "--initial-management-token-file", tokenFile,
			"--hypervisor", "sim", "--sim-vms", fmt.Sprint(vmsPerHost), "--sim-vm-mem", "512", "--sim-timescale", "20",
			"--network", "vmnet", "--storage-domain", "shared=/srv/shared", "--log-level", "warn"}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", fmt.Sprintf("127.0.0.1:%d", ports[0]))
		}
		cmd := exec.Command(bin, append(args, tlsFlags...)...)
		log, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		m.names = append(m.names, name)
		m.api = append(m.api, fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]))
		m.host = append(m.host, fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]))
	}
	return m
}

// client is an API client of addr trusting the mesh CA, sending token.
func (m *procMesh) client(addr, token string) *api.Client {
	cl, err := api.NewClient(api.Config{Addr: addr, CAFile: m.certs.CAFile, Token: token})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(cl.Close)
	return cl
}

// fingerprint is the replicated state as an admin reads it, minus what
// moves on its own (host facts' free memory): refused requests must leave
// it, and the Raft index, exactly as they were.
func (m *procMesh) fingerprint(cl *api.Client) string {
	ctx := context.Background()
	var parts []string
	var st api.Status
	if err := cl.Do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		m.t.Fatalf("status: %v", err)
	}
	parts = append(parts, fmt.Sprintf("last_index=%d leader=%s term=%d", st.LastIndex, st.Leader, st.Term))
	for _, path := range []string{"/v1/vms", "/v1/migrations", "/v1/drains", "/v1/clusters/c1", "/v1/acl/tokens"} {
		var v any
		if err := cl.Do(ctx, http.MethodGet, path, nil, &v); err != nil {
			m.t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := json.Marshal(v)
		parts = append(parts, path+"="+string(b))
	}
	var hosts []api.HostView
	if err := cl.Do(ctx, http.MethodGet, "/v1/hosts", nil, &hosts); err != nil {
		m.t.Fatalf("hosts: %v", err)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	for _, h := range hosts {
		parts = append(parts, fmt.Sprintf("host %s %s", h.Name, h.State))
	}
	return strings.Join(parts, "\n")
}

// cred is one way an attacker (or operator) calls.
type cred struct {
	name  string
	tls   *tls.Config // the client's TLS: its certificate, if any
	token string
	claim string // X-Mesh-Host
}

// outcome of one request.
const (
	atTLS     = "refused at TLS"
	needToken = "401"
	forbidden = "403"
	notHere   = "404"
	allowed   = "allowed"
)

// TestAttackMatrix: on 3 real meshd processes started as the README says,
// every route class (read, operator, admin on the API port; the host-only
// routes, asked on the API port and on the host port; the sim's peer
// route; Raft) is called with every credential (none, a client
// certificate of another CA, an operator's client certificate without a
// token, read, operator and admin tokens, a host certificate of the mesh
// claiming another host's name). Each answer is the expected refusal or
// acceptance; after every refusal the Raft index and the state are as they
// were, and the leader's term did not move.
func TestAttackMatrix(t *testing.T) {
	start := time.Now()
	m := startProcMesh(t, 3, 2)
	admin := m.client(m.api[0], m.token)
	ctx := context.Background()
	if err := Poll(60*time.Second, 100*time.Millisecond, func() bool {
		var hosts []api.HostView
		if admin.Do(ctx, http.MethodGet, "/v1/hosts", nil, &hosts) != nil || len(hosts) != 3 {
			return false
		}
		vms, err := admin.VMs(ctx)
		return err == nil && len(vms) == 6
	}); err != nil {
		t.Fatalf("3 hosts and 6 VMs: %v", err)
	}
	tokens := map[string]string{}
	for _, p := range []string{"read", "operator", "admin"} {
		tok, err := admin.ACLTokenCreate(ctx, api.ACLTokenRequest{Name: "matrix-" + p, Policy: p})
		if err != nil {
			t.Fatalf("create %s token: %v", p, err)
		}
		tokens[p] = tok.SecretID
	}

	other, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	strangerKP, _ := other.HostCert(pki.CertSpec{Name: "p2"})
	operatorKP, _ := m.certs.CA.ClientCert(pki.CertSpec{Name: "alice"})
	intruderKP, _ := m.certs.CA.HostCert(pki.CertSpec{Name: "p9"})
	withCert := func(kp *pki.KeyPair) *tls.Config {
		// An attacker trusts any server; the server must refuse it.
		tc := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if kp != nil {
			tc.Certificates = []tls.Certificate{kp.TLSCertificate()}
		}
		return tc
	}
	creds := []cred{
		{name: "none", tls: withCert(nil)},
		{name: "another CA's certificate", tls: withCert(strangerKP), token: m.token},
		{name: "operator certificate, no token", tls: withCert(operatorKP)},
		{name: "read token", tls: withCert(nil), token: tokens["read"]},
		{name: "operator token", tls: withCert(nil), token: tokens["operator"]},
		{name: "admin token", tls: withCert(nil), token: tokens["admin"]},
		{name: "host p9 claiming p2", tls: withCert(intruderKP), claim: "p2"},
	}

	// The routes: a mutating request of each class, and what each
	// credential must get. A request that is allowed is sent after every
	// refusal was checked (it changes the state).
	vms, _ := admin.VMs(ctx)
	var vm string
	for _, v := range vms {
		if v.Host == "p1" {
			vm = v.Name
		}
	}
	evil, _ := fsm.Encode(fsm.CmdSetCluster, fsm.SetCluster{Cluster: fsm.Cluster{Name: "c1", MaxOutgoing: 9, MaxIncoming: 9,
		MaxConcurrent: 99, BandwidthMode: fsm.BandwidthFixed, BandwidthMiB: 1, MigrationNetMiB: 1000, Policy: "precopy"}})
	var c1 api.Cluster
	if err := admin.Do(ctx, http.MethodGet, "/v1/clusters/c1", nil, &c1); err != nil {
		t.Fatal(err)
	}
	c1.MaxConcurrent++
	type route struct {
		class, method, path string
		hostPort            bool
		body                any
		// refuseOnly: the allowed call is not made (it would make the
		// host leave the mesh).
		refuseOnly bool
		want       func(c cred) string
	}
	apiWant := func(need string) func(c cred) string {
		return func(c cred) string {
			rank := map[string]int{"read": 1, "operator": 2, "admin": 3}
			switch {
			case c.name == "another CA's certificate":
				return atTLS
			case c.name == "host p9 claiming p2", c.token == "":
				return needToken
			}
			for p, tok := range tokens {
				if tok == c.token && rank[p] >= rank[need] {
					return allowed
				}
			}
			return forbidden
		}
	}
	hostWant := func(c cred) string {
		if c.name == "host p9 claiming p2" {
			return forbidden
		}
		return atTLS
	}
	routes := []route{
		{class: "read", method: "GET", path: "/v1/hosts", want: apiWant("read")},
		{class: "read", method: "GET", path: "/v1/events", want: apiWant("read")},
		{class: "read", method: "GET", path: "/metrics", want: apiWant("read")},
		{class: "operator", method: "POST", path: "/v1/migrations", body: api.MigrateRequest{VM: vm, To: "p2"}, want: apiWant("operator")},
		{class: "operator", method: "POST", path: "/v1/hosts/p3/drain", body: api.DrainRequest{}, want: apiWant("operator")},
		{class: "admin", method: "PUT", path: "/v1/clusters/c1", body: c1, want: apiWant("admin")},
		{class: "admin", method: "POST", path: "/v1/leave", body: api.LeaveRequest{}, want: apiWant("admin"), refuseOnly: true},
		{class: "admin", method: "POST", path: "/v1/acl/tokens", body: api.ACLTokenRequest{Name: "sneaky", Policy: "admin"}, want: apiWant("admin")},
		{class: "admin", method: "POST", path: "/v1/keyring", body: api.KeyringRequest{Key: gossip.GenerateKey()}, want: apiWant("admin")},
		{class: "host-only on the API port", method: "POST", path: "/v1/internal/apply", body: evil, want: func(c cred) string {
			if c.name == "another CA's certificate" {
				return atTLS
			}
			return notHere
		}},
		{class: "host-only", method: "POST", path: "/v1/internal/apply", hostPort: true, body: evil, want: hostWant},
		{class: "host-only", method: "POST", path: "/v1/internal/keyring", hostPort: true, body: api.KeyringRequest{Key: gossip.GenerateKey()}, want: hostWant},
		{class: "sim peer", method: "POST", path: "/v1/sim/reserve", hostPort: true,
			body: map[string]any{"id": "x1", "source": "p2", "vm": map[string]any{"name": "evil", "memory_mib": 512}}, want: hostWant},
	}

	call := func(r route, c cred, target int) (string, error) {
		addr := m.api[target]
		tc := c.tls.Clone()
		if r.hostPort {
			addr = m.host[target]
		}
		cl, err := api.NewClient(api.Config{Addr: addr, TLS: tc, Token: c.token, Host: c.claim, Timeout: 10 * time.Second})
		if err != nil {
			return "", err
		}
		defer cl.Close()
		var in any = r.body
		if b, ok := r.body.([]byte); ok {
			in = bytes.NewReader(b)
		}
		err = cl.Do(ctx, r.method, r.path, in, nil)
		var ae *api.Error
		var ce *api.ConnError
		switch {
		case err == nil:
			return allowed, nil
		case errors.As(err, &ce):
			return atTLS, err
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			return needToken, err
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return forbidden, err
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return notHere, err
		case errors.As(err, &ae) && ae.Status != 0:
			// Past the ACL check, refused by the state (409 and the like).
			return allowed, err
		}
		return "", err
	}

	// Refusals first, each on a quiet mesh, on the leader's API and a
	// follower's.
	waitQuiet := func() string {
		var last, fp string
		var since time.Time
		if err := Poll(30*time.Second, 50*time.Millisecond, func() bool {
			cur := m.fingerprint(admin)
			if cur != last {
				last, since = cur, time.Now()
				return false
			}
			fp = cur
			return time.Since(since) >= time.Second
		}); err != nil {
			t.Fatalf("the mesh did not go quiet: %v", err)
		}
		return fp
	}
	before := waitQuiet()
	cases, refusals := 0, 0
	var allowedLater []struct {
		r route
		c cred
	}
	for _, r := range routes {
		for _, c := range creds {
			want := r.want(c)
			if want == allowed && r.refuseOnly {
				continue
			}
			if want == allowed {
				allowedLater = append(allowedLater, struct {
					r route
					c cred
				}{r, c})
				continue
			}
			for _, target := range []int{0, 2} {
				cases++
				refusals++
				got, err := call(r, c, target)
				if got != want {
					t.Errorf("%s %s %s (%s) on %s with %s: %s (%v), want %s", r.class, r.method, r.path, map[bool]string{true: "host port", false: "API port"}[r.hostPort],
						m.names[target], c.name, got, err, want)
					continue
				}
				var ae *api.Error
				if (want == needToken || want == forbidden) && !r.hostPort && (!errors.As(err, &ae) || ae.Right == "" || !strings.Contains(ae.Message, ae.Right+" right needed")) {
					t.Errorf("%s %s with %s: the refusal %v does not name the right needed", r.method, r.path, c.name, err)
				}
			}
		}
	}
	// Raft: AppendEntries of a higher term carrying the same command, from
	// every credential's TLS (tokens mean nothing there).
	var st api.Status
	if err := admin.Do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	appendReq := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("p2"), Addr: []byte("127.0.0.1:1")},
		Term:      1 << 20, PrevLogEntry: st.LastIndex, LeaderCommitIndex: st.LastIndex + 1,
		Entries: []*raft.Log{{Index: st.LastIndex + 1, Term: 1 << 20, Type: raft.LogCommand, Data: evil}},
	}
	for _, c := range creds {
		for _, target := range []int{0, 2} {
			cases++
			refusals++
			if err := rawRaftRPC(m.host[target], c.tls, wireAppendEntries, appendReq, nil); err == nil {
				t.Errorf("Raft AppendEntries of term %d to %s with %s was answered", appendReq.Term, m.names[target], c.name)
			}
		}
	}
	after := waitQuiet()
	if after != before {
		t.Fatalf("%d refused requests changed the state:\nbefore:\n%s\nafter:\n%s", refusals, before, after)
	}
	// The fingerprint holds the leader, its term and last index: the
	// AppendEntries of a higher term moved none of them.

	// Now the allowed ones: each passes the ACL check (a later one may be
	// refused by the state: the VM already migrating, say), on the
	// leader's API.
	for _, a := range allowedLater {
		cases++
		got, err := call(a.r, a.c, 0)
		if got != allowed {
			t.Errorf("%s %s with %s: %s (%v), want allowed", a.r.method, a.r.path, a.c.name, got, err)
		}
	}
	// The writes record their tokens.
	migs, err := admin.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]bool{}
	for _, mg := range migs {
		actors[mg.RequestedBy] = true
	}
	if !actors["token:matrix-operator"] {
		t.Errorf("migrations asked by %v, want one by token:matrix-operator", actors)
	}
	t.Logf("attack matrix: %d routes x %d credentials (+ Raft): %d cases, %d refusals with the state unchanged, in %s",
		len(routes), len(creds), cases, refusals, time.Since(start).Round(time.Millisecond))
}

// TestACLBootstrapOnce: a mesh started without an initial management token
// serves only health and bootstrap to operators; bootstrap works once and
// its token manages the others; a deleted token is refused at once.
func TestACLBootstrapOnce(t *testing.T) {
	c := New(t, Options{Hosts: 3})
	c.Leader(10 * time.Second)
	addr := c.Node(1).APIAddr()
	ctx := context.Background()
	anon := c.TokenClient(addr, "")
	defer anon.Close()
	// The cluster started with an initial management token: bootstrap is
	// refused, and the token is in the table.
	var ae *api.Error
	if _, err := anon.ACLBootstrap(ctx); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("bootstrap of a mesh with an initial management token: %v, want 409", err)
	}
	// The leader writes it into the table once it leads.
	c.WaitFor(10*time.Second, "the initial management token in the table", func() bool {
		ts, err := c.Client(addr).ACLTokens(ctx)
		return err == nil && len(ts) == 1
	})
	ts, err := c.Client(addr).ACLTokens(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "initial-management" || ts[0].Policy != "admin" || ts[0].CreatedBy == "" {
		t.Fatalf("tokens: %+v, %v", ts, err)
	}
	if _, err := anon.Hosts(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Right != "read" {
		t.Fatalf("hosts without a token: %v, want 401 naming read", err)
	}
	if _, err := anon.Live(ctx); err != nil {
		t.Fatalf("health without a token: %v", err)
	}

	// meshctl acl token create / list / delete.
	code, out, errOut := c.meshctl(t, addr, "acl", "token", "create", "--name", "ci", "--policy", "read", "--json")
	var tok api.ACLToken
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok.SecretID == "" || tok.Policy != "read" {
		t.Fatalf("meshctl acl token create: %d %s %s", code, out, errOut)
	}
	// Another host knows the token once it applied its creation.
	ci := c.TokenClient(c.Node(2).APIAddr(), tok.SecretID)
	defer ci.Close()
	c.WaitFor(10*time.Second, "the read token valid on h3", func() bool {
		_, err := ci.Hosts(ctx)
		return err == nil
	})
	if _, err := ci.Drain(ctx, "h3", api.DrainRequest{}); !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Right != "operator" ||
		!strings.Contains(ae.Message, "operator right needed to drain a host") {
		t.Fatalf("drain with the read token: %v, want 403 naming operator", err)
	}
	if code, out, _ := c.meshctl(t, addr, "acl", "token", "list"); code != 0 || !strings.Contains(out, "ci") || strings.Contains(out, tok.SecretID) {
		t.Fatalf("meshctl acl token list: %d\n%s", code, out)
	}
	if code, out, errOut := c.meshctl(t, addr, "acl", "token", "delete", "ci"); code != 0 {
		t.Fatalf("meshctl acl token delete: %d %s %s", code, out, errOut)
	}
	c.WaitFor(10*time.Second, "the deleted token refused on every host", func() bool {
		for _, n := range c.Nodes() {
			cl := c.TokenClient(n.APIAddr(), tok.SecretID)
			_, err := cl.Hosts(ctx)
			cl.Close()
			if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
				return false
			}
		}
		return true
	})
	if code, _, errOut := c.meshctl(t, addr, "acl", "token", "delete", "initial-management"); code != 1 || !strings.Contains(errOut, "last admin token") {
		t.Fatalf("deleting the last admin token: %d %s", code, errOut)
	}
}

// TestACLBootstrapWithoutInitialToken: no initial token: before bootstrap
// operators get 401 saying to bootstrap; bootstrap works once.
func TestACLBootstrapWithoutInitialToken(t *testing.T) {
	c := New(t, Options{Hosts: 1, NoInitialToken: true})
	c.Leader(10 * time.Second)
	addr := c.Node(0).APIAddr()
	ctx := context.Background()
	anon := c.TokenClient(addr, "")
	defer anon.Close()
	var ae *api.Error
	if _, err := anon.Hosts(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || !strings.Contains(ae.Message, "meshctl acl bootstrap") {
		t.Fatalf("hosts before bootstrap: %v, want 401 saying to bootstrap", err)
	}
	mgmt, err := anon.ACLBootstrap(ctx)
	if err != nil || mgmt.SecretID == "" || mgmt.Policy != "admin" || mgmt.CreatedBy != "anonymous" {
		t.Fatalf("bootstrap: %+v, %v", mgmt, err)
	}
	if _, err := anon.ACLBootstrap(ctx); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("second bootstrap: %v, want 409", err)
	}
	cl := c.TokenClient(addr, mgmt.SecretID)
	defer cl.Close()
	if _, err := cl.Hosts(ctx); err != nil {
		t.Fatalf("hosts with the management token: %v", err)
	}
	// The forged initial token of a cluster that has none is nothing.
	forged := c.TokenClient(addr, c.ManagementToken)
	defer forged.Close()
	if _, err := forged.Hosts(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("an unknown token: %v, want 401", err)
	}
}
