package gossip

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// cutTransport wraps memberlist's own TCP/UDP transport with a switch that
// drops every packet and connection, in and out, while blocked() is true:
// a network partition of one host, for tests. It implements only
// memberlist.Transport (not the node-aware extension), so every send goes
// through the switch.
type cutTransport struct {
	inner   *memberlist.NetTransport
	blocked func() bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	closing chan struct{} // Shutdown began: drop instead of deliver
	stop    chan struct{} // the inner transport stopped: forward ends
}

func newCutTransport(mc *memberlist.Config, blocked func() bool) (*cutTransport, error) {
	addr := mc.BindAddr
	if addr == "" {
		addr = "0.0.0.0"
	}
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{addr}, BindPort: mc.BindPort, Logger: mc.Logger})
	if err != nil {
		return nil, fmt.Errorf("gossip transport on %s:%d: %w", addr, mc.BindPort, err)
	}
	t := &cutTransport{inner: inner, blocked: blocked,
		packets: make(chan *memberlist.Packet, 256), streams: make(chan net.Conn, 16),
		closing: make(chan struct{}), stop: make(chan struct{})}
	go t.forward()
	return t, nil
}

// forward passes incoming traffic on unless the host is cut off. It keeps
// draining the inner transport until that has stopped: the inner listeners
// block on their unbuffered channels, and the inner Shutdown waits for them.
func (t *cutTransport) forward() {
	for {
		select {
		case <-t.stop:
			return
		case p := <-t.inner.PacketCh():
			if t.blocked() {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.closing:
			}
		case c := <-t.inner.StreamCh():
			if t.blocked() {
				c.Close()
				continue
			}
			select {
			case t.streams <- c:
			case <-t.closing:
				c.Close()
			}
		}
	}
}

func (t *cutTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.blocked() {
		return time.Now(), nil // lost on the wire, as UDP is
	}
	return t.inner.WriteTo(b, addr)
}

func (t *cutTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.blocked() {
		return nil, fmt.Errorf("dial %s: network cut (partition)", addr)
	}
	return t.inner.DialTimeout(addr, timeout)
}

func (t *cutTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *cutTransport) Shutdown() error {
	close(t.closing)
	err := t.inner.Shutdown()
	close(t.stop)
	return err
}
