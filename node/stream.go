package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/pki"
)

// streamLayer is the host port: Raft's TCP stream layer over a listener we
// opened ourselves (so port 0 works and the address is known before Raft
// starts), which also carries the host-only HTTP routes (internal apply,
// the keyring's per-host step, the sim's peer endpoints), as Consul's
// server port carries both its RPC and Raft. The TLS handshake tells them
// apart by ALPN: alpnRaft (or none, as a meshd before the split sends) is a
// Raft stream, alpnHTTP goes to the host-only HTTP server (HTTP). So every
// host-only route is refused at the handshake to anyone without a host
// certificate of the mesh CA, and the operator's API port serves operator
// routes only. Without TLS (--dev) the first byte decides: a Raft RPC
// starts with its type (0 to 4), an HTTP request with a letter.
//
// With the host's TLS material it is mutual TLS in both directions, as
// hashicorp/raft leaves to the transport (raft#201) and Consul does with
// verify_incoming: a dialer checks that the peer is a host certificate of
// the mesh CA named as the Raft configuration names it; an accepted
// connection must present a host certificate of the mesh CA, or the
// handshake refuses it before one byte of Raft is read. Without TLS (--dev)
// it is plain TCP and accepts anyone.
//
// With a blocked switch (tests only) it refuses and drops every connection
// while the host is partitioned.
type streamLayer struct {
	net.Listener
	blocked func() bool
	tls     *pki.HostTLS // nil: plain TCP (--dev)
	server  *tls.Config  // the accepting side, built once
	// HTTP receives the host port's HTTP connections, handshake done.
	HTTP *connListener

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newStreamLayer(ln net.Listener, blocked func() bool, ht *pki.HostTLS) *streamLayer {
	s := &streamLayer{Listener: ln, blocked: blocked, tls: ht, conns: map[net.Conn]struct{}{},
		HTTP: newConnListener(ln.Addr())}
	if ht != nil {
		s.server = ht.PeerServerConfig()
		s.server.NextProtos = []string{alpnRaft, alpnHTTP}
	}
	return s
}

// The host port's application protocols (ALPN).
const (
	alpnRaft = "hostmesh-raft/1"
	alpnHTTP = "http/1.1"
)

// hostProto is what a connection to the host port carries.
type hostProto int

const (
	protoRaft hostProto = iota
	protoHTTP
)

// Close closes the listener and the HTTP connection queue.
func (s *streamLayer) Close() error {
	s.HTTP.Close()
	return s.Listener.Close()
}

func (s *streamLayer) cut() bool { return s.blocked != nil && s.blocked() }

// Dial is raft.StreamLayer's: it accepts any host of the mesh at addr.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dialHost(addr, "", timeout)
}

// dialHost connects to the Raft listener at addr. With TLS the handshake is
// done before it returns, and the peer must be host want (any host of the
// mesh when want is empty).
func (s *streamLayer) dialHost(addr raft.ServerAddress, want string, timeout time.Duration) (net.Conn, error) {
	if s.cut() {
		return nil, fmt.Errorf("dial %s: network cut (partition)", addr)
	}
	raw, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	c := s.track(raw)
	if s.tls == nil {
		return c, nil
	}
	cfg := s.tls.DialHost(want)
	cfg.NextProtos = []string{alpnRaft}
	tc := tls.Client(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft TLS to host %q at %s: %w", want, addr, err)
	}
	return tc, nil
}

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if s.cut() {
			c.Close()
			continue
		}
		return s.track(c), nil
	}
}

// handshake completes the accepting side of a connection Accept returned,
// within timeout, and returns the verified peer host ("" without TLS) and
// what the connection carries. The transport calls it in the connection's
// own goroutine, so a peer that never finishes its handshake holds up no
// one else.
func (s *streamLayer) handshake(c net.Conn, timeout time.Duration) (net.Conn, string, hostProto, error) {
	if s.tls == nil {
		return sniff(c, timeout)
	}
	tc := tls.Server(c, s.server)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		return nil, "", 0, err
	}
	_ = tc.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	peer, err := pki.PeerHost(cs)
	if err != nil {
		return nil, "", 0, err
	}
	if cs.NegotiatedProtocol == alpnHTTP {
		return tc, peer, protoHTTP, nil
	}
	return tc, peer, protoRaft, nil
}

// sniff tells a plain (--dev) Raft stream from HTTP by its first byte.
func sniff(c net.Conn, timeout time.Duration) (net.Conn, string, hostProto, error) {
	br := bufio.NewReaderSize(c, 64)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	first, err := br.Peek(1)
	if err != nil {
		return nil, "", 0, err
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if first[0] >= 'A' && first[0] <= 'Z' {
		return pc, "", protoHTTP, nil
	}
	return pc, "", protoRaft, nil
}

// peekedConn is a connection whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// connListener is a net.Listener of connections handed over by the host
// port once their handshake told them HTTP: the host-only HTTP server
// serves it.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// handoff gives c to the HTTP server; false once the listener is closed
// (the caller then closes c).
func (l *connListener) handoff(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// track remembers live connections so a partition can sever them.
func (s *streamLayer) track(c net.Conn) net.Conn {
	if s.blocked == nil {
		return c
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return &trackedConn{Conn: c, s: s}
}

// sever closes every live connection: called when a partition starts.
func (s *streamLayer) sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = map[net.Conn]struct{}{}
}

type trackedConn struct {
	net.Conn
	s *streamLayer
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c.Conn)
	c.s.mu.Unlock()
	return c.Conn.Close()
}
