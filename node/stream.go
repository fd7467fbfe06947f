package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/pki"
)

// streamLayer is Raft's TCP stream layer over a listener we opened ourselves
// (so port 0 works and the address is known before Raft starts).
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

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newStreamLayer(ln net.Listener, blocked func() bool, ht *pki.HostTLS) *streamLayer {
	s := &streamLayer{Listener: ln, blocked: blocked, tls: ht, conns: map[net.Conn]struct{}{}}
	if ht != nil {
		s.server = ht.PeerServerConfig()
	}
	return s
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
	tc := tls.Client(c, s.tls.DialHost(want))
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
// within timeout, and returns the verified peer host ("" without TLS). The
// transport calls it in the connection's own goroutine, so a peer that
// never finishes its handshake holds up no one else.
func (s *streamLayer) handshake(c net.Conn, timeout time.Duration) (net.Conn, string, error) {
	if s.tls == nil {
		return c, "", nil
	}
	tc := tls.Server(c, s.server)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		return nil, "", err
	}
	_ = tc.SetDeadline(time.Time{})
	peer, err := pki.PeerHost(tc.ConnectionState())
	if err != nil {
		return nil, "", err
	}
	return tc, peer, nil
}

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
