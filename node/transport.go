package node

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// raftTransport is hostmesh's Raft transport: NetworkTransport's wire
// format (one type byte, the msgpack request; the answer is an error string
// and the msgpack response), so hosts running either interoperate, with
// both halves our own.
//
// The sending half: the leader sends to every other host (95 non-voters in
// a 100-host mesh), and NetworkTransport gives each outgoing connection a
// 256 KiB bufio.Writer (a constant, connSendBufferSize, not configurable up
// to raft v1.8.0). A leader holds about two such connections per follower
// (heartbeats and replication), so 100 hosts pinned ~60 MiB of send buffers
// on the leader, and the Go heap target doubled that: the leader's RSS was
// 100-140 MiB while every other meshd stayed near 43 MiB (pprof heap of the
// leader: bufio.NewWriterSize from NetworkTransport.AppendEntries, 88% of
// the heap). Replication is pipelined as NetworkTransport's default does
// (two AppendEntries in flight per follower): without it a follower learns
// a commit only after its previous answer (and fsync) came back, which made
// every write a client reads back from a non-voter ~100 ms slower at 100
// hosts. Each outgoing connection is dialed for the server ID Raft names,
// and with TLS the peer's host certificate must carry that name.
//
// The receiving half (transport_recv.go) knows which verified host is at
// the other end of each connection, and refuses an RPC whose header claims
// another sender: NetworkTransport's receiving half sees only bytes.
type raftTransport struct {
	stream  *streamLayer
	timeout time.Duration
	maxPool int
	log     *slog.Logger

	// pace holds back an idle leader's redundant RPCs (transport_pace.go);
	// nil sends everything as Raft asks.
	pace *pacer

	mu       sync.Mutex
	pool     map[poolKey][]*rpcConn
	shutdown bool

	// answered: raft.ServerID → the time (unix ns) its last answer came
	// back, read by the leader before it removes a peer gossip declared
	// failed (removeFailedPeer): a peer that answers Raft is not failed.
	answered sync.Map

	recv
}

// answeredBy records an answer of peer id.
func (t *raftTransport) answeredBy(id raft.ServerID) { t.answered.Store(id, time.Now().UnixNano()) }

// lastAnswer is when peer id last answered an RPC (zero: never).
func (t *raftTransport) lastAnswer(id raft.ServerID) time.Time {
	if v, ok := t.answered.Load(id); ok {
		return time.Unix(0, v.(int64))
	}
	return time.Time{}
}

// poolKey names a pooled connection by address and the server ID it was
// verified for: a connection to h2 is never reused for an ID claiming
// h2's address later.
type poolKey struct {
	id   raft.ServerID
	addr raft.ServerAddress
}

// rpcSendBuffer is the write buffer of one inbound Raft connection (its
// answers). Larger writes go out in several syscalls instead of one, which
// costs nothing measurable at a control plane's rates.
const rpcSendBuffer = 8 << 10

// An outgoing connection keeps no write buffer of its own: each request is
// encoded into a buffer taken from sendBufs and written at once. The leader
// holds an outgoing connection (its pipeline) to every follower, and an
// 8 KiB bufio.Writer on each sat idle between appends: 1.6 MiB of the
// leader's heap at 200 hosts, for buffers one at a time would fill. A
// request now goes out in one write (TLS cuts it into 16 KiB records),
// where the bufio.Writer flushed every 8 KiB.
var sendBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledSend: a buffer grown past this (a batch of large entries, a
// snapshot request) is left to the collector rather than kept in the pool.
const maxPooledSend = 256 << 10

// rpcAnswerBuffer is the read buffer of one outgoing connection, which
// reads only answers (an AppendEntries answer is ~50 bytes): bufio's
// default 4 KiB on each of the leader's connections to its followers was
// 0.7 MiB at 200 hosts.
const rpcAnswerBuffer = 512

// msgpackHandle is shared by every connection (a handle caches type
// information and is safe for concurrent use once configured). TimeNotBuiltin
// matches NetworkTransport's default encoding of time.Time.
var (
	encHandle = &codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}}
	decHandle = &codec.MsgpackHandle{}
)

// Raft RPC type bytes, as raft's net_transport.go numbers them.
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

func newRaftTransport(stream *streamLayer, maxPool int, timeout time.Duration, log *slog.Logger) *raftTransport {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	t := &raftTransport{stream: stream, timeout: timeout, maxPool: maxPool, log: log,
		pool: map[poolKey][]*rpcConn{}}
	t.recv.init()
	go t.listen()
	return t
}

type rpcConn struct {
	key  poolKey
	conn net.Conn
	out  sendBuf // what enc writes into, during send
	enc  *codec.Encoder
	dec  *codec.Decoder
}

// sendBuf is an rpcConn's encoder's writer: the buffer of the send under way.
type sendBuf struct{ b *bytes.Buffer }

func (s *sendBuf) Write(p []byte) (int, error) { return s.b.Write(p) }

// newRPCConn wraps an outgoing connection, verified for key's server.
func newRPCConn(key poolKey, conn net.Conn) *rpcConn {
	c := &rpcConn{key: key, conn: conn, dec: codec.NewDecoder(bufio.NewReaderSize(conn, rpcAnswerBuffer), decHandle)}
	c.enc = codec.NewEncoder(&c.out, encHandle)
	return c
}

func (t *raftTransport) getConn(id raft.ServerID, target raft.ServerAddress) (*rpcConn, error) {
	key := poolKey{id, target}
	t.mu.Lock()
	if t.shutdown {
		t.mu.Unlock()
		return nil, raft.ErrTransportShutdown
	}
	if conns := t.pool[key]; len(conns) > 0 {
		c := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.pool[key] = conns[:len(conns)-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	conn, err := t.stream.dialHost(target, string(id), t.timeout)
	if err != nil {
		return nil, err
	}
	return newRPCConn(key, conn), nil
}

func (t *raftTransport) returnConn(c *rpcConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if conns := t.pool[c.key]; !t.shutdown && len(conns) < t.maxPool {
		t.pool[c.key] = append(conns, c)
		return
	}
	_ = c.conn.Close()
}

// closeIdle closes the pooled connections. A host that stops leading has
// one or two to every other host and no use for them; each also holds a
// read buffer in its peer's receiving half until it is closed.
func (t *raftTransport) closeIdle() {
	if t.pace != nil {
		t.pace.kick()
	}
	t.mu.Lock()
	pool := t.pool
	t.pool = map[poolKey][]*rpcConn{}
	t.mu.Unlock()
	for _, conns := range pool {
		for _, c := range conns {
			_ = c.conn.Close()
		}
	}
}

// dropPaced closes the pooled connections to paced non-voters. Those
// carried their heartbeats, which the pacer now holds (the pipeline's
// paced appends reach them instead), so each would sit idle with its
// buffers on both ends: ~95 of them on the leader of 100 hosts. A
// heartbeat that is still sent to one (no pipeline) dials again.
func (t *raftTransport) dropPaced() {
	if t.pace == nil {
		return
	}
	var drop []*rpcConn
	t.mu.Lock()
	for k, conns := range t.pool {
		if t.pace.paced(k.id) {
			drop = append(drop, conns...)
			delete(t.pool, k)
		}
	}
	t.mu.Unlock()
	for _, c := range drop {
		_ = c.conn.Close()
	}
}

// Close stops the listener, the pooled connections and the inbound ones.
func (t *raftTransport) Close() error {
	t.mu.Lock()
	t.shutdown = true
	t.mu.Unlock()
	if t.pace != nil {
		t.pace.stop()
	}
	t.closeIdle()
	t.recv.close(t.stream)
	return nil
}

// AppendEntriesPipeline opens a connection of its own for pipelined
// replication to one follower.
func (t *raftTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	c, err := t.getConn(id, target)
	if err != nil {
		return nil, err
	}
	p := &pipeline{c: c, t: t, timeout: t.timeout, pace: t.pace, inflight: make(chan *appendFuture),
		done: make(chan raft.AppendFuture), stop: make(chan struct{}), failed: make(chan struct{})}
	return p, nil
}

// pipeline sends AppendEntries without waiting for the answers, which a
// goroutine decodes in order. An unbuffered inflight channel still lets two
// requests be in flight (one sent, one being decoded), as NetworkTransport's
// default MaxRPCsInFlight of 2 does.
//
// A pipeline ends at its first failed answer (an error, or a follower's
// refusal): Raft's pipelineDecode stops reading the answers at such a one
// and leaves the pipeline, but its sending loop only notices once its next
// AppendEntries returns (and Go's select may pick another send first).
// A decoder that went on would block handing the next answer to no one,
// and the next AppendEntries block handing its request to that decoder:
// the leader's replication to that follower would hang while its
// heartbeats go on, and the follower stay behind for as long as that
// leader leads (it did: the fault soak's "replicas differ"). So the
// decoder marks the pipeline failed once it delivered a failed answer, and
// every AppendEntries from then on returns an error, which ends Raft's
// loop (Raft then replicates without a pipeline until one succeeds).
//
// The decoder runs only while answers are awaited: AppendEntries starts it
// when none runs, and it returns once every request handed to it is
// answered and none is on its way. A leader has a pipeline to every
// follower, and in an idle mesh each sees one paced append a second: a
// decoder parked on each pipeline was a goroutine stack (8 KiB and more)
// per follower on the leader, 1.6 MiB at 200 hosts, for a few milliseconds
// of work a second.
type pipeline struct {
	c        *rpcConn
	t        *raftTransport
	timeout  time.Duration
	pace     *pacer
	inflight chan *appendFuture
	done     chan raft.AppendFuture
	stop     chan struct{}
	once     sync.Once
	// failed is closed once the decoder delivered a failed answer and
	// stopped (see above).
	failed chan struct{}

	// mu guards pending (requests sent whose future is not yet taken by
	// the decoder) and decoding (a decoder runs).
	mu       sync.Mutex
	pending  int
	decoding bool
}

// errPipelineFailed: an earlier answer on the pipeline failed, and Raft
// abandons a pipeline at such an answer.
var errPipelineFailed = errors.New("raft pipeline: an earlier append failed; the pipeline is closed")

func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	select {
	case <-p.failed:
		p.refused()
		return nil, errPipelineFailed
	case <-p.stop:
		return nil, raft.ErrPipelineShutdown
	default:
	}
	if p.pace != nil && !p.pace.holdAppend(p.c.key.id, args, p.stop) {
		return nil, raft.ErrPipelineShutdown
	}
	f := &appendFuture{start: time.Now(), args: args, resp: resp, done: make(chan struct{})}
	if p.timeout > 0 {
		_ = p.c.conn.SetWriteDeadline(time.Now().Add(p.timeout))
	}
	if err := p.c.send(rpcAppendEntries, args); err != nil {
		return nil, err
	}
	if p.pace != nil {
		p.pace.sent(p.c.key.id)
	}
	p.mu.Lock()
	p.pending++
	if !p.decoding {
		p.decoding = true
		go p.decode()
	}
	p.mu.Unlock()
	select {
	case p.inflight <- f:
		return f, nil
	case <-p.stop:
		return nil, raft.ErrPipelineShutdown
	case <-p.failed:
		p.refused()
		return nil, errPipelineFailed
	}
}

// refused logs an append refused because an earlier answer failed: Raft
// sent on after its decoder had left (the fault soak counts these).
func (p *pipeline) refused() {
	p.t.log.Debug(logPipelineRefused, "peer", string(p.c.key.id))
}

// logPipelineRefused is the message of pipeline.refused.
const logPipelineRefused = "raft pipeline: an append after a failed answer refused; the pipeline ends"

// decode reads the answers in order and hands each to Raft, until none is
// awaited (a later AppendEntries starts another decoder), the pipeline
// closes, or an answer fails (then it marks the pipeline failed and
// returns for good: see pipeline).
func (p *pipeline) decode() {
	for {
		// A sender counts its request pending before it hands the future
		// over, under mu: with none pending, no handover can be under way.
		p.mu.Lock()
		if p.pending == 0 {
			p.decoding = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		select {
		case f := <-p.inflight:
			p.mu.Lock()
			p.pending--
			p.mu.Unlock()
			if p.timeout > 0 {
				_ = p.c.conn.SetReadDeadline(time.Now().Add(p.timeout))
			}
			remote, err := p.c.receive(f.resp)
			if err != nil {
				// The stream is out of step (a late answer would be read
				// as the next request's): nothing more is sent on it.
				_ = p.c.conn.Close()
			} else {
				p.t.answeredBy(p.c.key.id)
				err = remote
			}
			f.err = err
			close(f.done)
			select {
			case p.done <- f:
			case <-p.stop:
				return
			}
			if err != nil || !f.resp.Success {
				close(p.failed)
				return
			}
		case <-p.stop:
			return
		}
	}
}

func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.done }

// Close ends the pipeline; its connection is never pooled again.
func (p *pipeline) Close() error {
	p.once.Do(func() {
		_ = p.c.conn.Close()
		close(p.stop)
	})
	return nil
}

// appendFuture is one pipelined AppendEntries.
type appendFuture struct {
	start time.Time
	args  *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	done  chan struct{}
	err   error
}

func (f *appendFuture) Error() error                          { <-f.done; return f.err }
func (f *appendFuture) Start() time.Time                      { return f.start }
func (f *appendFuture) Request() *raft.AppendEntriesRequest   { return f.args }
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }

func (t *raftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if t.pace != nil && isHeartbeat(args) {
		t.pace.holdHeartbeat(id, t.shutdownCh)
	}
	return t.rpc(id, target, rpcAppendEntries, args, resp)
}

func (t *raftTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.rpc(id, target, rpcRequestVote, args, resp)
}

func (t *raftTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.rpc(id, target, rpcRequestPreVote, args, resp)
}

func (t *raftTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.rpc(id, target, rpcTimeoutNow, args, resp)
}

// rpc sends one request and reads its answer on a pooled connection; a
// connection that failed mid-way is closed, never pooled.
func (t *raftTransport) rpc(id raft.ServerID, target raft.ServerAddress, typ uint8, args, resp any) error {
	c, err := t.getConn(id, target)
	if err != nil {
		return err
	}
	if t.timeout > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(t.timeout))
	}
	if err := c.send(typ, args); err != nil {
		_ = c.conn.Close()
		return err
	}
	if t.pace != nil {
		t.pace.sent(id)
	}
	remote, err := c.receive(resp)
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	t.answeredBy(id)
	t.returnConn(c)
	return remote
}

// InstallSnapshot streams a snapshot on a connection of its own, closed
// afterwards, with the deadline scaled by the snapshot's size as
// NetworkTransport does.
func (t *raftTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	c, err := t.getConn(id, target)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if t.timeout > 0 {
		timeout := max(t.timeout*time.Duration(args.Size/int64(raft.DefaultTimeoutScale)), t.timeout)
		_ = c.conn.SetDeadline(time.Now().Add(timeout))
	}
	if err := c.send(rpcInstallSnapshot, args); err != nil {
		return err
	}
	if _, err := io.Copy(c.conn, data); err != nil {
		return err
	}
	remote, err := c.receive(resp)
	if err != nil {
		return err
	}
	return remote
}

// send writes one request: its type byte and the msgpack request, encoded
// into a pooled buffer and written at once.
func (c *rpcConn) send(typ uint8, args any) error {
	b := sendBufs.Get().(*bytes.Buffer)
	b.Reset()
	b.WriteByte(typ)
	c.out.b = b
	err := c.enc.Encode(args)
	c.out.b = nil
	if err == nil {
		_, err = c.conn.Write(b.Bytes())
	}
	if b.Cap() <= maxPooledSend {
		sendBufs.Put(b)
	}
	return err
}

// receive decodes an answer: the remote's error (returned as the first
// value; the connection stays usable) and the response.
func (c *rpcConn) receive(resp any) (remote, err error) {
	var msg string
	if err := c.dec.Decode(&msg); err != nil {
		return nil, err
	}
	if err := c.dec.Decode(resp); err != nil {
		return nil, err
	}
	if msg != "" {
		return errors.New(msg), nil
	}
	return nil, nil
}
