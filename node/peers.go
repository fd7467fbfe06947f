package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/pki"
)

// peerClients holds one client of each peer host's host port (by name and
// address), so forwarded writes reuse their connections. With TLS each presents this
// host's certificate and accepts only the named peer's.
type peerClients struct {
	self string
	tls  *pki.HostTLS // nil: plain HTTP (--dev)

	mu      sync.Mutex
	clients map[string]*api.Client
}

// peerIdleTimeout closes a host's idle connection to a peer's host port,
// below the host port's own idle limit (hostIdleTimeout) so the caller, not
// the server, closes it: a POST sent on a connection the server is closing
// is not retried by net/http. Hosts forward writes to the leader in bursts
// (inventory changes, a migration's progress every 500 ms); between bursts
// every host of a 100-host mesh held a connection to the leader for 90 s
// (net/http's default), and the leader all 99 of them, each with its TLS
// state, read and write buffers and a goroutine. A new burst pays one TLS
// handshake (about a millisecond), which no forwarded write notices next
// to its Raft commit.
const peerIdleTimeout = 10 * time.Second

func (p *peerClients) client(name, addr string) (*api.Client, error) {
	key := name + "@" + addr
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[key]; c != nil {
		return c, nil
	}
	cfg := api.Config{Addr: "http://" + addr, Host: p.self, IdleConnTimeout: peerIdleTimeout}
	if p.tls != nil {
		// ALPN asks the host port for its HTTP server (see streamLayer).
		cfg.Addr, cfg.TLS = "https://"+addr, p.tls.DialHost(name)
		cfg.TLS.NextProtos = []string{alpnHTTP}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("client of host %s at %s: %w", name, addr, err)
	}
	if p.clients == nil {
		p.clients = map[string]*api.Client{}
	}
	p.clients[key] = c
	return c, nil
}

// close drops every client's idle connections.
func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
	p.clients = nil
}
