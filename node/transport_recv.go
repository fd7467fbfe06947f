package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// The receiving half of raftTransport: NetworkTransport's listen,
// handleConn and handleCommand (raft v1.7.3 net_transport.go), with the
// TLS handshake in each connection's goroutine and the peer's verified
// name checked against the sender every RPC claims in its header.

// rpcRecvBuffer is the read buffer of one inbound Raft connection.
// NetworkTransport's is 256 KiB per connection; at a control plane's rates
// a larger AppendEntries batch costs a few more reads instead.
const rpcRecvBuffer = 16 << 10

// handshakeTimeout bounds an inbound TLS handshake.
const handshakeTimeout = 10 * time.Second

// recv is the receiving half's state.
type recv struct {
	consumeCh  chan raft.RPC
	shutdownCh chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup

	hbMu      sync.Mutex
	heartbeat func(raft.RPC)

	connMu  sync.Mutex
	inbound map[net.Conn]struct{}

	// refusedHandshakes counts connections refused at the TLS handshake (no
	// certificate, another CA, expired, an operator's); refusedSenders
	// counts RPCs whose header named another host than the certificate.
	refusedHandshakes atomic.Uint64
	refusedSenders    atomic.Uint64
}

func (r *recv) init() {
	r.consumeCh = make(chan raft.RPC)
	r.shutdownCh = make(chan struct{})
	r.inbound = map[net.Conn]struct{}{}
}

// close stops accepting, closes the live inbound connections and waits for
// their goroutines.
func (r *recv) close(stream *streamLayer) {
	r.closeOnce.Do(func() {
		close(r.shutdownCh)
		_ = stream.Close()
		r.connMu.Lock()
		for c := range r.inbound {
			_ = c.Close()
		}
		r.connMu.Unlock()
	})
	r.wg.Wait()
}

func (r *recv) isShutdown() bool {
	select {
	case <-r.shutdownCh:
		return true
	default:
		return false
	}
}

// Consumer is where Raft reads the RPCs that arrive.
func (t *raftTransport) Consumer() <-chan raft.RPC { return t.consumeCh }

// LocalAddr is the Raft listener's address.
func (t *raftTransport) LocalAddr() raft.ServerAddress {
	return raft.ServerAddress(t.stream.Addr().String())
}

// SetHeartbeatHandler sets the fast path for heartbeats, which then skip
// the consumer channel (and its head-of-line blocking behind disk I/O).
func (t *raftTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.hbMu.Lock()
	defer t.hbMu.Unlock()
	t.heartbeat = cb
}

// EncodePeer and DecodePeer keep a server's address as its bytes.
func (t *raftTransport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

func (t *raftTransport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// RefusedHandshakes counts inbound connections refused at the TLS
// handshake; RefusedSenders counts RPCs refused because their header named
// another sender than the peer's certificate.
func (t *raftTransport) RefusedHandshakes() uint64 { return t.refusedHandshakes.Load() }
func (t *raftTransport) RefusedSenders() uint64    { return t.refusedSenders.Load() }

// listen accepts connections until the transport closes, with
// NetworkTransport's back-off on accept errors.
func (t *raftTransport) listen() {
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := t.stream.Accept()
		if err != nil {
			if t.isShutdown() {
				return
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			select {
			case <-t.shutdownCh:
				return
			case <-time.After(delay):
				continue
			}
		}
		delay = 0
		t.connMu.Lock()
		if t.isShutdown() {
			t.connMu.Unlock()
			_ = conn.Close()
			return
		}
		t.inbound[conn] = struct{}{}
		t.wg.Add(1)
		t.connMu.Unlock()
		go t.handleConn(conn)
	}
}

// handleConn serves one inbound connection: the TLS handshake first, then
// one RPC after another until the peer closes it or breaks a rule.
func (t *raftTransport) handleConn(raw net.Conn) {
	defer t.wg.Done()
	handedOff := false
	defer func() {
		t.connMu.Lock()
		delete(t.inbound, raw)
		t.connMu.Unlock()
		if !handedOff {
			_ = raw.Close()
		}
	}()
	conn, peer, proto, err := t.stream.handshake(raw, handshakeTimeout)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "remote error" {
			// The dialer gave up on us (it expected another host here).
			t.log.Warn("raft: a peer refused this host's certificate", "remote", raw.RemoteAddr().String(), "err", err)
			return
		}
		t.refusedHandshakes.Add(1)
		t.log.Warn("raft: refused a connection at the TLS handshake: peers must present a host certificate of the mesh CA",
			"remote", raw.RemoteAddr().String(), "err", err)
		return
	}
	if proto == protoHTTP {
		// A host-only HTTP request: the host API server owns it now.
		handedOff = t.stream.HTTP.handoff(conn)
		return
	}
	r := bufio.NewReaderSize(conn, rpcRecvBuffer)
	w := bufio.NewWriterSize(conn, rpcSendBuffer)
	dec := codec.NewDecoder(r, decHandle)
	enc := codec.NewEncoder(w, encHandle)
	for {
		if err := t.handleCommand(peer, r, dec, enc); err != nil {
			var impostor *senderError
			switch {
			case errors.As(err, &impostor):
				t.refusedSenders.Add(1)
				t.log.Warn("raft: refused an RPC whose sender is not the certificate's host; connection closed",
					"remote", raw.RemoteAddr().String(), "certificate", peer, "claimed", impostor.claimed, "rpc", impostor.rpc)
			case !errors.Is(err, io.EOF) && !t.isShutdown():
				t.log.Debug("raft: inbound connection ended", "remote", raw.RemoteAddr().String(), "err", err)
			}
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// senderError is an RPC whose header names another host than the one the
// connection's certificate belongs to.
type senderError struct {
	rpc, claimed string
}

func (e *senderError) Error() string {
	return fmt.Sprintf("raft %s claims sender %q", e.rpc, e.claimed)
}

// checkSender refuses an RPC whose claimed sender (RPCHeader.ID, which
// Raft records as the leader or candidate) is not the verified peer. Without
// TLS (peer "") there is nobody to check against.
func checkSender(peer, rpc string, h raft.RPCHeader) error {
	if peer != "" && string(h.ID) != peer {
		return &senderError{rpc: rpc, claimed: string(h.ID)}
	}
	return nil
}

// handleCommand decodes one RPC, checks its sender, dispatches it to Raft
// (heartbeats through the fast path) and writes the answer.
func (t *raftTransport) handleCommand(peer string, r *bufio.Reader, dec *codec.Decoder, enc *codec.Encoder) error {
	typ, err := r.ReadByte()
	if err != nil {
		return err
	}
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{RespChan: respCh}
	isHeartbeat := false
	switch typ {
	case rpcAppendEntries:
		var req raft.AppendEntriesRequest
		if err := dec.Decode(&req); err != nil {
			return err
		}
		if err := checkSender(peer, "AppendEntries", req.RPCHeader); err != nil {
			return err
		}
		rpc.Command = &req
		leaderAddr := req.RPCHeader.Addr
		if len(leaderAddr) == 0 {
			leaderAddr = req.Leader //nolint:staticcheck // older senders set only this
		}
		isHeartbeat = req.Term != 0 && leaderAddr != nil && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
			len(req.Entries) == 0 && req.LeaderCommitIndex == 0
	case rpcRequestVote:
		var req raft.RequestVoteRequest
		if err := dec.Decode(&req); err != nil {
			return err
		}
		if err := checkSender(peer, "RequestVote", req.RPCHeader); err != nil {
			return err
		}
		rpc.Command = &req
	case rpcRequestPreVote:
		var req raft.RequestPreVoteRequest
		if err := dec.Decode(&req); err != nil {
			return err
		}
		if err := checkSender(peer, "RequestPreVote", req.RPCHeader); err != nil {
			return err
		}
		rpc.Command = &req
	case rpcInstallSnapshot:
		var req raft.InstallSnapshotRequest
		if err := dec.Decode(&req); err != nil {
			return err
		}
		if err := checkSender(peer, "InstallSnapshot", req.RPCHeader); err != nil {
			return err
		}
		rpc.Command = &req
		rpc.Reader = io.LimitReader(r, req.Size)
	case rpcTimeoutNow:
		var req raft.TimeoutNowRequest
		if err := dec.Decode(&req); err != nil {
			return err
		}
		if err := checkSender(peer, "TimeoutNow", req.RPCHeader); err != nil {
			return err
		}
		rpc.Command = &req
	default:
		return fmt.Errorf("unknown raft rpc type %d", typ)
	}

	dispatched := false
	if isHeartbeat {
		t.hbMu.Lock()
		fn := t.heartbeat
		t.hbMu.Unlock()
		if fn != nil {
			fn(rpc)
			dispatched = true
		}
	}
	if !dispatched {
		select {
		case t.consumeCh <- rpc:
		case <-t.shutdownCh:
			return raft.ErrTransportShutdown
		}
	}
	select {
	case resp := <-respCh:
		msg := ""
		if resp.Error != nil {
			msg = resp.Error.Error()
		}
		if err := enc.Encode(msg); err != nil {
			return err
		}
		return enc.Encode(resp.Response)
	case <-t.shutdownCh:
		return raft.ErrTransportShutdown
	}
}
