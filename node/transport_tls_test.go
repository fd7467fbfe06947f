package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/pki"
)

// tlsStream is a stream layer on loopback with host name's certificate of ca.
func tlsStream(t *testing.T, ca *pki.CA, name string) *streamLayer {
	t.Helper()
	kp, err := ca.HostCert(pki.CertSpec{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	ht, err := pki.NewHostTLS(ca.Cert, kp)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newStreamLayer(ln, nil, ht)
}

func header(id string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte("127.0.0.1:1")}
}

// TestRaftTransportOverTLSChecksNamesBothWays: h2 reaches h1 only when
// Raft names the server h1 (the dialer verifies the certificate's name),
// and h1 answers an RPC only when its header claims the sender the
// certificate names; an RPC claiming another host closes the connection
// unanswered, for every RPC type.
func TestRaftTransportOverTLSChecksNamesBothWays(t *testing.T) {
	ca, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	h1 := newRaftTransport(tlsStream(t, ca, "h1"), 3, 5*time.Second, nil)
	defer h1.Close()
	h2 := newRaftTransport(tlsStream(t, ca, "h2"), 3, 5*time.Second, nil)
	defer h2.Close()
	var seen []string
	serve(t, h1, func(rpc raft.RPC) (any, error) {
		switch req := rpc.Command.(type) {
		case *raft.AppendEntriesRequest:
			seen = append(seen, "append from "+string(req.RPCHeader.ID))
			return &raft.AppendEntriesResponse{Term: req.Term, Success: true}, nil
		case *raft.RequestVoteRequest:
			return &raft.RequestVoteResponse{Term: req.Term, Granted: true}, nil
		case *raft.RequestPreVoteRequest:
			return &raft.RequestPreVoteResponse{Term: req.Term, Granted: true}, nil
		case *raft.TimeoutNowRequest:
			return &raft.TimeoutNowResponse{RPCHeader: req.RPCHeader}, nil
		case *raft.InstallSnapshotRequest:
			return &raft.InstallSnapshotResponse{Term: req.Term, Success: true}, nil
		}
		return nil, nil
	})
	var resp raft.AppendEntriesResponse
	if err := h2.AppendEntries("h1", h1.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("h2"), Term: 4,
		Entries: []*raft.Log{{Index: 1, Data: []byte("x")}}}, &resp); err != nil || !resp.Success {
		t.Fatalf("h2 → h1 over TLS: %+v %v", resp, err)
	}
	// The dialer's check: the configuration says h3 is at h1's address.
	if err := h2.AppendEntries("h3", h1.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("h2"), Term: 4}, &resp); err == nil ||
		!strings.Contains(err.Error(), `want "h3"`) {
		t.Fatalf("h1 passed for h3: %v", err)
	}
	// The receiver's check: h2's certificate, another sender in the header.
	for name, send := range map[string]func() error{
		"AppendEntries": func() error {
			return h2.AppendEntries("h1", h1.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("h3"), Term: 99}, &raft.AppendEntriesResponse{})
		},
		"heartbeat": func() error {
			return h2.AppendEntries("h1", h1.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("h3"), Term: 99, Leader: []byte("x")}, &raft.AppendEntriesResponse{})
		},
		"RequestVote": func() error {
			return h2.RequestVote("h1", h1.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("h3"), Term: 99}, &raft.RequestVoteResponse{})
		},
		"RequestPreVote": func() error {
			return h2.RequestPreVote("h1", h1.LocalAddr(), &raft.RequestPreVoteRequest{RPCHeader: header("h3"), Term: 99}, &raft.RequestPreVoteResponse{})
		},
		"TimeoutNow": func() error {
			return h2.TimeoutNow("h1", h1.LocalAddr(), &raft.TimeoutNowRequest{RPCHeader: header("h3")}, &raft.TimeoutNowResponse{})
		},
		"InstallSnapshot": func() error {
			return h2.InstallSnapshot("h1", h1.LocalAddr(), &raft.InstallSnapshotRequest{RPCHeader: header("h3"), Term: 99, Size: 1},
				&raft.InstallSnapshotResponse{}, strings.NewReader("s"))
		},
		"no sender": func() error {
			return h2.AppendEntries("h1", h1.LocalAddr(), &raft.AppendEntriesRequest{Term: 99}, &raft.AppendEntriesResponse{})
		},
	} {
		if err := send(); err == nil {
			t.Errorf("%s claiming h3 over h2's certificate was answered", name)
		}
	}
	if len(seen) != 1 || seen[0] != "append from h2" {
		t.Fatalf("h1's Raft saw %v, want only h2's own append", seen)
	}
	if got := h1.RefusedSenders(); got != 7 {
		t.Fatalf("h1 refused %d RPCs for their sender, want 7", got)
	}
	if got := h1.RefusedHandshakes(); got != 0 {
		t.Fatalf("h1 refused %d handshakes of a host of its mesh", got)
	}

	// A host certificate of another mesh, from a dialer that does not care
	// whom it talks to (an attacker's): refused by h1 at the handshake.
	other, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := other.HostCert(pki.CertSpec{Name: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", string(h1.LocalAddr()), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{kp.TLSCertificate()}})
	if err == nil {
		defer conn.Close()
		c := newRPCConn(poolKey{}, conn)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err = c.send(rpcAppendEntries, &raft.AppendEntriesRequest{RPCHeader: header("h2"), Term: 99}); err == nil {
			_, err = c.receive(&raft.AppendEntriesResponse{})
		}
	}
	if err == nil {
		t.Fatal("a host certificate of another CA was answered")
	}
	if err := testPoll(5*time.Second, func() bool { return h1.RefusedHandshakes() == 1 }); err != nil {
		t.Fatalf("h1 counted %d refused handshakes, want 1", h1.RefusedHandshakes())
	}
	if len(seen) != 1 {
		t.Fatalf("h1's Raft saw %v", seen)
	}
}

// testPoll waits for cond with a deadline (the refusal is counted by the
// server's goroutine after the client already saw its error).
func testPoll(timeout time.Duration, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return errors.New("condition not met in time")
		}
	}
	return nil
}

// TestHostPortCarriesRaftAndHTTP: one listener, two protocols. Over TLS,
// ALPN sends a host's HTTP request to the host-only HTTP server (which sees
// the verified certificate) and Raft to Raft on the same port; a caller
// without a certificate is refused at the handshake whatever it asks.
// Without TLS (--dev) the first byte tells them apart.
func TestHostPortCarriesRaftAndHTTP(t *testing.T) {
	ca, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	plain := newRaftTransport(listenStream(t), 3, 5*time.Second, nil)
	defer plain.Close()
	h1 := newRaftTransport(tlsStream(t, ca, "h1"), 3, 5*time.Second, nil)
	defer h1.Close()
	h2 := newRaftTransport(tlsStream(t, ca, "h2"), 3, 5*time.Second, nil)
	defer h2.Close()
	for _, tr := range []*raftTransport{plain, h1} {
		serve(t, tr, func(rpc raft.RPC) (any, error) {
			req := rpc.Command.(*raft.AppendEntriesRequest)
			return &raft.AppendEntriesResponse{Term: req.Term, Success: true}, nil
		})
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			who := "nobody"
			if r.TLS != nil {
				who, _ = pki.PeerHost(*r.TLS)
			}
			fmt.Fprintf(w, "%s %s from %s", r.Method, r.URL.Path, who)
		})}
		go func() { _ = srv.Serve(tr.stream.HTTP) }()
		defer srv.Close()
	}
	get := func(cl *http.Client, url string) (string, error) {
		resp, err := cl.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	kp, err := ca.HostCert(pki.CertSpec{Name: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	ht, err := pki.NewHostTLS(ca.Cert, kp)
	if err != nil {
		t.Fatal(err)
	}
	tc := ht.DialHost("h1")
	tc.NextProtos = []string{alpnHTTP}
	hostClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	defer hostClient.CloseIdleConnections()
	if got, err := get(hostClient, "https://"+string(h1.LocalAddr())+"/v1/internal/x"); err != nil || got != "GET /v1/internal/x from h2" {
		t.Fatalf("a host's HTTP request on the host port: %q, %v", got, err)
	}
	var resp raft.AppendEntriesResponse
	if err := h2.AppendEntries("h1", h1.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("h2"), Term: 3}, &resp); err != nil || !resp.Success {
		t.Fatalf("Raft on the same port: %+v %v", resp, err)
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}}
	defer anon.CloseIdleConnections()
	if got, err := get(anon, "https://"+string(h1.LocalAddr())+"/v1/internal/x"); err == nil {
		t.Fatalf("a caller without a certificate was answered: %q", got)
	}

	if got, err := get(http.DefaultClient, "http://"+string(plain.LocalAddr())+"/v1/sim/reserve"); err != nil || got != "GET /v1/sim/reserve from nobody" {
		t.Fatalf("plain HTTP on a --dev host port: %q, %v", got, err)
	}
	client := newRaftTransport(listenStream(t), 3, 5*time.Second, nil)
	defer client.Close()
	if err := client.AppendEntries("x", plain.LocalAddr(), &raft.AppendEntriesRequest{RPCHeader: header("x"), Term: 3}, &resp); err != nil || !resp.Success {
		t.Fatalf("plain Raft on a --dev host port: %+v %v", resp, err)
	}
}
