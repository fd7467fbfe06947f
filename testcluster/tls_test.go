package testcluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/pki"
)

// waitQuiet waits until n's Raft log has not grown for a second, so that a
// test can assert that something did not write to it.
func (c *Cluster) waitQuiet(n *node.Node) {
	c.t.Helper()
	var idx uint64
	var since time.Time
	c.WaitFor(30*time.Second, n.Name()+"'s Raft log quiet for 1 s", func() bool {
		if cur := n.Raft().LastIndex(); cur != idx {
			idx, since = cur, time.Now()
			return false
		}
		return time.Since(since) >= time.Second
	})
}

// rawRaftRPC sends one Raft RPC as a process that is not a mesh host would:
// over plain TCP (tc nil) or TLS with whatever certificate tc presents,
// trusting any server; it returns the RPC's answer error, or why there was
// none.
func rawRaftRPC(addr string, tc *tls.Config, typ uint8, req any, snapshot []byte) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if tc == nil {
		conn, err = d.Dial("tcp", addr)
	} else {
		conn, err = tls.DialWithDialer(&d, "tcp", addr, tc)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	w := bufio.NewWriter(conn)
	enc := codec.NewEncoder(w, &codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}})
	if err := w.WriteByte(typ); err != nil {
		return err
	}
	if err := enc.Encode(req); err != nil {
		return err
	}
	if _, err := w.Write(snapshot); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	dec := codec.NewDecoder(bufio.NewReader(conn), &codec.MsgpackHandle{})
	var msg string
	if err := dec.Decode(&msg); err != nil {
		return err
	}
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}

// Raft RPC type bytes on the wire (raft's net_transport.go).
const (
	wireAppendEntries   uint8 = 0
	wireInstallSnapshot uint8 = 2
)

// TestRaftRefusesPeersWithoutAHostCertificate is the attack matrix's Raft
// line: a process without a certificate, with a certificate of another CA,
// with an operator's certificate of the mesh's own CA, or with an expired
// host certificate sends the leader an AppendEntries of a higher term
// carrying a command, and an InstallSnapshot. Each connection is refused at
// the TLS handshake, nothing is answered, and the leader's term and last
// index stay as they were on every replica. A host certificate of the mesh
// whose RPC claims another host is refused as well.
func TestRaftRefusesPeersWithoutAHostCertificate(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "3 hosts Up everywhere", allHostsUp(c, 3))
	c.waitQuiet(l)
	term, last := l.Raft().CurrentTerm(), l.Raft().LastIndex()
	handshakes0, senders0 := l.RaftRefusals()

	evil, err := fsm.Encode(fsm.CmdSetCluster, fsm.SetCluster{Cluster: fsm.Cluster{Name: "c1", MaxOutgoing: 9, MaxIncoming: 9,
		MaxConcurrent: 99, BandwidthMode: fsm.BandwidthFixed, BandwidthMiB: 1, MigrationNetMiB: 1000, Policy: "precopy"}})
	if err != nil {
		t.Fatal(err)
	}
	var follower string
	for _, n := range c.Nodes() {
		if n != l {
			follower = n.Name()
		}
	}
	appendReq := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(follower), Addr: []byte("127.0.0.1:1")},
		Term:      term + 100, PrevLogEntry: last, PrevLogTerm: term, LeaderCommitIndex: last + 1,
		Entries: []*raft.Log{{Index: last + 1, Term: term + 100, Type: raft.LogCommand, Data: evil}},
	}
	snapshot := []byte(`{"hosts":{}}`)
	snapReq := &raft.InstallSnapshotRequest{
		RPCHeader:       raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(follower), Addr: []byte("127.0.0.1:1")},
		SnapshotVersion: raft.SnapshotVersionMax, Term: term + 100, LastLogIndex: last + 1000, LastLogTerm: term + 100,
		Size: int64(len(snapshot)),
	}

	other, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	strangerHost, _ := other.HostCert(pki.CertSpec{Name: follower})
	operator, _ := c.CA.ClientCert(pki.CertSpec{Name: "alice"})
	now := time.Now()
	expired, _ := c.CA.HostCert(pki.CertSpec{Name: follower, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	withCert := func(kp *pki.KeyPair) *tls.Config {
		tc := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if kp != nil {
			tc.Certificates = []tls.Certificate{kp.TLSCertificate()}
		}
		return tc
	}
	peers := []struct {
		what string
		tls  *tls.Config
	}{
		{"plain TCP", nil},
		{"TLS without a certificate", withCert(nil)},
		{"a host certificate of another CA", withCert(strangerHost)},
		{"an operator's certificate of the mesh CA", withCert(operator)},
		{"an expired host certificate of the mesh CA", withCert(expired)},
	}
	for _, p := range peers {
		if err := rawRaftRPC(l.RaftAddr(), p.tls, wireAppendEntries, appendReq, nil); err == nil {
			t.Errorf("%s: AppendEntries of term %d answered", p.what, term+100)
		}
		if err := rawRaftRPC(l.RaftAddr(), p.tls, wireInstallSnapshot, snapReq, snapshot); err == nil {
			t.Errorf("%s: InstallSnapshot answered", p.what)
		}
	}
	want := handshakes0 + uint64(2*len(peers))
	c.WaitFor(10*time.Second, "every connection counted as refused at the handshake", func() bool {
		h, _ := l.RaftRefusals()
		return h == want
	})

	// A host of the mesh (a certificate the CA issued to "h9") that claims
	// to be the follower: refused at its first RPC, the connection closed.
	h9, err := c.HostTLS("h9")
	if err != nil {
		t.Fatal(err)
	}
	impostor := h9.DialHost(l.Name())
	if err := rawRaftRPC(l.RaftAddr(), impostor, wireAppendEntries, appendReq, nil); err == nil {
		t.Error("an AppendEntries of h9 claiming to be " + follower + " was answered")
	}
	c.WaitFor(10*time.Second, "the impostor's RPC counted", func() bool {
		_, s := l.RaftRefusals()
		return s == senders0+1
	})

	if !l.IsLeader() || l.Raft().CurrentTerm() != term || l.Raft().LastIndex() != last {
		t.Fatalf("after the attempts the leader is leader %v, term %d (was %d), last index %d (was %d)",
			l.IsLeader(), l.Raft().CurrentTerm(), term, l.Raft().LastIndex(), last)
	}
	for _, n := range c.Nodes() {
		if n.Raft().CurrentTerm() != term {
			t.Errorf("%s is at term %d, was %d", n.Name(), n.Raft().CurrentTerm(), term)
		}
		var cl fsm.Cluster
		n.FSM().Read(func(s *fsm.State) { cl = s.Cluster("c1") })
		if cl.MaxConcurrent == 99 || cl.Policy == "precopy" {
			t.Errorf("%s applied the refused command: %+v", n.Name(), cl)
		}
	}
	h, s := l.RaftRefusals()
	t.Logf("leader %s, term %d, last index %d unchanged; refused %d handshakes and %d impostor RPCs", l.Name(), term, last, h-handshakes0, s-senders0)
	metrics, err := c.Scrape(l.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metrics.Value("hostmesh_raft_refused_total", "reason", "handshake"); !ok || v != float64(h) {
		t.Errorf("hostmesh_raft_refused_total{reason=handshake} = %g (%v), want %d", v, ok, h)
	}
}

// TestInternalApplyIsForHostsOnly: /v1/internal/apply is served on the
// host port only. There, on the leader and on a follower, a caller without
// a client certificate, with an operator's certificate, with a certificate
// of another CA, or speaking plain HTTP is refused at the TLS handshake,
// and a host of the mesh claiming another host's name gets a 403; the API
// port answers 404 naming the host port. The Raft index and the state stay
// as they were. The same command from a host certificate is applied, and
// an operator's write to a follower is forwarded to the leader's host port
// over mutual TLS.
func TestInternalApplyIsForHostsOnly(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, Logger: slog.New(logs)})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "3 hosts Up everywhere", allHostsUp(c, 3))
	var f *node.Node
	for _, n := range c.Nodes() {
		if n != l {
			f = n
		}
	}
	setCluster := func(maxConcurrent int) []byte {
		cl := fsm.DefaultCluster("c1")
		cl.MaxConcurrent = maxConcurrent
		b, err := fsm.Encode(fsm.CmdSetCluster, fsm.SetCluster{Cluster: cl})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	maxConcurrent := func(n *node.Node) int {
		var v int
		n.FSM().Read(func(s *fsm.State) { v = s.Cluster("c1").MaxConcurrent })
		return v
	}
	ctx := context.Background()
	other, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	operator, _ := c.CA.ClientCert(pki.CertSpec{Name: "alice"})
	stranger, _ := other.HostCert(pki.CertSpec{Name: "h2"})
	// An attacker's client: it trusts any server, and presents kp.
	client := func(addr string, kp *pki.KeyPair) *api.Client {
		tc := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
		if kp != nil {
			tc.Certificates = []tls.Certificate{kp.TLSCertificate()}
		}
		cl, err := api.NewClient(api.Config{Addr: addr, TLS: tc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}

	c.waitQuiet(l)
	last := l.Raft().LastIndex()
	before := maxConcurrent(l)
	handshakes := map[string]uint64{}
	for _, n := range []*node.Node{l, f} {
		handshakes[n.Name()], _ = n.RaftRefusals()
		addr := n.RaftAddr()
		h9, err := c.HostTLS("h9")
		if err != nil {
			t.Fatal(err)
		}
		impostor, err := api.NewClient(api.Config{Addr: addr, TLS: h9.DialHost(""), Host: f.Name()})
		if err != nil {
			t.Fatal(err)
		}
		defer impostor.Close()
		plain, err := api.NewClient(api.Config{Addr: "http://" + addr})
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		for _, tc := range []struct {
			what   string
			cl     *api.Client
			status int // 0: refused at the handshake
			say    string
		}{
			{"no client certificate", client(addr, nil), 0, ""},
			{"an operator's certificate", client(addr, operator), 0, ""},
			{"a host certificate of another CA", client(addr, stranger), 0, ""},
			{"plain HTTP", plain, 0, ""},
			{"host h9 claiming to be " + f.Name(), impostor, http.StatusForbidden, "claims to be host"},
		} {
			_, _, err := tc.cl.InternalApply(ctx, setCluster(77))
			var ae *api.Error
			var ce *api.ConnError
			switch {
			case tc.status == 0 && !errors.As(err, &ce):
				t.Errorf("%s to %s's host port: %v, want a refused handshake", tc.what, n.Name(), err)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status || ae.Kind != api.KindForbidden || !strings.Contains(ae.Message, tc.say)):
				t.Errorf("%s to %s's host port: %v, want %d saying %q", tc.what, n.Name(), err, tc.status, tc.say)
			}
		}
		// The operators' API port does not serve it, whoever asks.
		for what, cl := range map[string]*api.Client{"an operator": c.Client(n.APIAddr()), "a host": c.HostClient(n.APIAddr(), "probe")} {
			var ae *api.Error
			if _, _, err := cl.InternalApply(ctx, setCluster(77)); !errors.As(err, &ae) || ae.Status != http.StatusNotFound ||
				!strings.Contains(ae.Message, "host port") {
				t.Errorf("%s's internal apply at %s's API port: %v, want 404 naming the host port", what, n.Name(), err)
			}
		}
	}
	for _, n := range []*node.Node{l, f} {
		c.WaitFor(10*time.Second, n.Name()+" counted 4 refused handshakes", func() bool {
			h, _ := n.RaftRefusals()
			return h == handshakes[n.Name()]+4
		})
	}
	if got := l.Raft().LastIndex(); got != last {
		t.Fatalf("the leader's last index moved from %d to %d after refused requests", last, got)
	}
	for _, n := range c.Nodes() {
		if got := maxConcurrent(n); got != before {
			t.Fatalf("%s: max concurrent %d, was %d", n.Name(), got, before)
		}
	}
	if refusals := logs.Lines(slog.LevelWarn, "refused a host-only request"); len(refusals) != 2 {
		t.Errorf("%d refused host-only requests logged, want 2 (the impostor on 2 hosts): %v", len(refusals), refusals)
	}

	// A host certificate of the mesh may: the route itself works.
	if _, _, err := c.HostClient(l.RaftAddr(), "probe").InternalApply(ctx, setCluster(77)); err != nil {
		t.Fatalf("a host certificate's apply: %v", err)
	}
	c.WaitFor(10*time.Second, "max concurrent 77 everywhere", func() bool {
		for _, n := range c.Nodes() {
			if maxConcurrent(n) != 77 {
				return false
			}
		}
		return true
	})

	// An operator's write to a follower: forwarded to the leader's host-only
	// route with the follower's certificate, and read back from the follower.
	cl := fsm.DefaultCluster("c1")
	cl.MaxConcurrent = 6
	if err := c.putCluster(f.APIAddr(), cl); err != nil {
		t.Fatalf("write through follower %s: %v", f.Name(), err)
	}
	if got := maxConcurrent(f); got != 6 {
		t.Fatalf("follower %s reads max concurrent %d after its own write, want 6", f.Name(), got)
	}
	if refusals := logs.Lines(slog.LevelWarn, "refused a host-only request"); len(refusals) != 2 {
		t.Errorf("the forwarded write was refused somewhere: %v", refusals)
	}
}

// TestDevModeSaysWhatIsInsecure: a mesh run without TLS logs a WARN naming
// each thing left open, serves plain HTTP, and its host-only routes admit
// anyone (which is what the warning is about).
func TestDevModeSaysWhatIsInsecure(t *testing.T) {
	logs := NewLogCapture()
	c := New(t, Options{Hosts: 1, DevMode: true, Logger: slog.New(logs)})
	l := c.Leader(10 * time.Second)
	warn := logs.Lines(slog.LevelWarn, "INSECURE")
	if len(warn) != 1 {
		t.Fatalf("%d INSECURE warnings, want 1: %v", len(warn), warn)
	}
	for _, what := range []string{"plain HTTP", "Raft is plain TCP"} {
		if !strings.Contains(warn[0].String(), what) {
			t.Errorf("the warning does not say %q: %v", what, warn[0])
		}
	}
	if _, err := c.Client(l.APIAddr()).Status(context.Background()); err != nil {
		t.Fatalf("plain HTTP status: %v", err)
	}
	b, _ := fsm.Encode(fsm.CmdSetCluster, fsm.SetCluster{Cluster: fsm.DefaultCluster("c1")})
	if _, _, err := c.Client(l.RaftAddr()).InternalApply(context.Background(), b); err != nil {
		t.Fatalf("--dev internal apply without a certificate: %v", err)
	}
}
