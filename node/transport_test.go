package node

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func listenStream(t *testing.T) *streamLayer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newStreamLayer(ln, nil, nil)
}

// serve answers every RPC arriving on trans with answer(rpc).
func serve(t *testing.T, trans raft.Transport, answer func(raft.RPC) (any, error)) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case rpc := <-trans.Consumer():
				if rpc.Reader != nil {
					b, _ := io.ReadAll(rpc.Reader)
					rpc.Command.(*raft.InstallSnapshotRequest).Size = int64(len(b)) // echo what arrived
				}
				resp, err := answer(rpc)
				rpc.Respond(resp, err)
			case <-done:
				return
			}
		}
	}()
}

func TestRaftTransportSpeaksNetworkTransportsWireFormat(t *testing.T) {
	ours := newRaftTransport(listenStream(t), 3, 5*time.Second, nil)
	defer ours.Close()
	theirs := raft.NewNetworkTransport(listenStream(t), 3, 5*time.Second, io.Discard)
	defer theirs.Close()
	answer := func(rpc raft.RPC) (any, error) {
		switch req := rpc.Command.(type) {
		case *raft.AppendEntriesRequest:
			if string(req.Entries[0].Data) == "refuse" {
				return &raft.AppendEntriesResponse{}, io.ErrUnexpectedEOF
			}
			return &raft.AppendEntriesResponse{Term: req.Term, LastLog: req.Entries[len(req.Entries)-1].Index, Success: true}, nil
		case *raft.RequestVoteRequest:
			return &raft.RequestVoteResponse{Term: req.Term, Granted: true}, nil
		case *raft.InstallSnapshotRequest:
			return &raft.InstallSnapshotResponse{Term: uint64(req.Size), Success: true}, nil
		}
		return nil, io.EOF
	}
	serve(t, ours, answer)
	serve(t, theirs, answer)

	// Both directions: ours → NetworkTransport and NetworkTransport → ours
	// (each side decodes the other's bytes), and ours → ours.
	big := bytes.Repeat([]byte("x"), 3*rpcSendBuffer+17) // larger than the send buffer
	for _, c := range []struct {
		name string
		from raft.Transport
		to   raft.ServerAddress
	}{{"ours to theirs", ours, theirs.LocalAddr()}, {"theirs to ours", theirs, ours.LocalAddr()}, {"ours to ours", ours, ours.LocalAddr()}} {
		for i := range 3 { // the second and third reuse the pooled connection
			var resp raft.AppendEntriesResponse
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: 7,
				Entries: []*raft.Log{{Index: 41, Data: big}, {Index: 42 + uint64(i), Data: []byte("y"), AppendedAt: time.Now()}}}
			if err := c.from.AppendEntries("x", c.to, req, &resp); err != nil {
				t.Fatalf("%s: append entries: %v", c.name, err)
			}
			if !resp.Success || resp.Term != 7 || resp.LastLog != 42+uint64(i) {
				t.Fatalf("%s: append entries answered %+v", c.name, resp)
			}
		}
		var resp raft.AppendEntriesResponse
		err := c.from.AppendEntries("x", c.to, &raft.AppendEntriesRequest{Entries: []*raft.Log{{Data: []byte("refuse")}}}, &resp)
		if err == nil || !strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
			t.Fatalf("%s: a refused RPC returned %v", c.name, err)
		}
		var vote raft.RequestVoteResponse
		if err := c.from.RequestVote("x", c.to, &raft.RequestVoteRequest{Term: 9}, &vote); err != nil || !vote.Granted || vote.Term != 9 {
			t.Fatalf("%s: request vote: %+v %v", c.name, vote, err)
		}
		var snap raft.InstallSnapshotResponse
		if err := c.from.InstallSnapshot("x", c.to, &raft.InstallSnapshotRequest{Size: int64(len(big))}, &snap, bytes.NewReader(big)); err != nil || snap.Term != uint64(len(big)) {
			t.Fatalf("%s: install snapshot: %+v %v", c.name, snap, err)
		}
	}

	// Pipelined appends, answered in order.
	for _, to := range []raft.ServerAddress{theirs.LocalAddr(), ours.LocalAddr()} {
		p, err := ours.AppendEntriesPipeline("x", to)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			req := &raft.AppendEntriesRequest{Term: 3, Entries: []*raft.Log{{Index: uint64(100 + i), Data: big}}}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				t.Fatalf("pipeline to %s: append %d: %v", to, i, err)
			}
			f := <-p.Consumer()
			if f.Error() != nil || !f.Response().Success || f.Response().LastLog != uint64(100+i) || f.Request() != req {
				t.Fatalf("pipeline to %s: append %d answered %+v, %v", to, i, f.Response(), f.Error())
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AppendEntries(&raft.AppendEntriesRequest{Entries: []*raft.Log{{}}}, &raft.AppendEntriesResponse{}); err == nil {
			t.Fatalf("pipeline to %s: append after close succeeded", to)
		}
	}
}

func TestRaftTransportClose(t *testing.T) {
	a := newRaftTransport(listenStream(t), 3, time.Second, nil)
	b := newRaftTransport(listenStream(t), 3, time.Second, nil)
	defer b.Close()
	serve(t, b, func(rpc raft.RPC) (any, error) { return &raft.RequestVoteResponse{Granted: true}, nil })
	var vote raft.RequestVoteResponse
	if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &vote); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &vote); err != raft.ErrTransportShutdown {
		t.Fatalf("after close: %v", err)
	}
	// A dead peer fails fast instead of hanging.
	dead := b.LocalAddr()
	_ = b.Close()
	c := newRaftTransport(listenStream(t), 3, time.Second, nil)
	defer c.Close()
	start := time.Now()
	if err := c.RequestVote("b", dead, &raft.RequestVoteRequest{}, &vote); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("dead peer: %v after %s", err, time.Since(start))
	}
}

func TestRaftTransportCloseIdle(t *testing.T) {
	a := newRaftTransport(listenStream(t), 3, time.Second, nil)
	defer a.Close()
	b := newRaftTransport(listenStream(t), 3, time.Second, nil)
	defer b.Close()
	serve(t, b, func(rpc raft.RPC) (any, error) { return &raft.RequestVoteResponse{Granted: true}, nil })
	var vote raft.RequestVoteResponse
	for range 2 {
		if err := a.RequestVote("b", b.LocalAddr(), &raft.RequestVoteRequest{}, &vote); err != nil {
			t.Fatal(err)
		}
		if n := len(a.pool[poolKey{"b", b.LocalAddr()}]); n != 1 {
			t.Fatalf("%d pooled connections, want 1", n)
		}
		a.closeIdle() // the next RPC dials again
		if n := len(a.pool[poolKey{"b", b.LocalAddr()}]); n != 0 {
			t.Fatalf("%d pooled connections after closeIdle", n)
		}
	}
}
