package testcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// Client is an API client of the node at apiAddr as an operator reaches
// it: HTTPS verified with the cluster's CA, no client certificate (plain
// HTTP in DevMode), the cluster's management token. One per address, kept
// for the cluster's life.
func (c *Cluster) Client(apiAddr string) *api.Client { return c.client(apiAddr, "") }

// HostClient is a client of the host port at hostAddr (a node's RaftAddr)
// that presents a host certificate of the cluster's CA for host (issued on
// first use), as a mesh host calling another does: it may use the
// host-only routes.
func (c *Cluster) HostClient(hostAddr, host string) *api.Client { return c.client(hostAddr, host) }

func (c *Cluster) client(apiAddr, host string) *api.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := host + "@" + apiAddr
	if cl := c.clients[key]; cl != nil {
		return cl
	}
	cfg := api.Config{Addr: "http://" + apiAddr}
	if host == "" {
		cfg.Token = c.ManagementToken
	}
	if c.CA != nil {
		cfg.Addr = apiAddr
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: x509.NewCertPool()}
		cfg.TLS.RootCAs.AddCert(c.CA.Cert)
		if host != "" {
			ht, err := c.HostTLS(host)
			if err != nil {
				c.t.Fatalf("testcluster: %v", err)
			}
			cfg.TLS = ht.DialHost("")
			cfg.Host = host
		}
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		c.t.Fatalf("testcluster: API client of %s: %v", apiAddr, err)
	}
	c.clients[key] = cl
	return cl
}

// Call sends one API request to the node at apiAddr and decodes the answer
// into out. A refusal is an *api.Error.
func (c *Cluster) Call(apiAddr, method, path string, in, out any) error {
	return c.Client(apiAddr).Do(context.Background(), method, path, in, out)
}

// Migrate queues a migration through any node and returns its ID.
func (c *Cluster) Migrate(apiAddr string, req api.MigrateRequest) (string, error) {
	resp, err := c.Client(apiAddr).Migrate(context.Background(), req)
	return resp.ID, err
}

// putCluster sets a cluster through a node's API, as meshctl cluster does:
// every field, as api.Cluster sends it (an empty list too: a PUT changes
// the fields it names).
func (c *Cluster) putCluster(apiAddr string, cl fsm.Cluster) error {
	_, err := c.Client(apiAddr).SetCluster(context.Background(), api.Cluster(cl))
	return err
}

// SlotWatch samples the leader's state on a ticker and records every moment
// a slot limit or a host's memory was exceeded, so tests can assert that
// limits held at every sample, not only at the end.
type SlotWatch struct {
	c    *Cluster
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	Samples    int
	Violations []string
	MaxRunning int
}

// WatchSlots starts sampling every interval until Stop.
func (c *Cluster) WatchSlots(interval time.Duration) *SlotWatch {
	w := &SlotWatch{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *SlotWatch) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		for _, n := range w.c.Nodes() {
			if !n.IsLeader() {
				continue
			}
			bad, running := w.c.slotSample(n)
			w.mu.Lock()
			w.Samples++
			w.Violations = append(w.Violations, bad...)
			w.MaxRunning = max(w.MaxRunning, running)
			w.mu.Unlock()
		}
	}
}

// slotSample checks once, in leader n's state, the slot limits and the
// auto bandwidth's network, and on the sim hosts their memory; it returns
// what exceeded a limit and how many migrations run.
func (c *Cluster) slotSample(n *node.Node) (bad []string, running int) {
	n.FSM().Read(func(s *fsm.State) {
		u := s.Slots()
		running = len(s.Running())
		for h, k := range u.Out {
			if lim := s.Cluster(s.Hosts[h].Cluster).MaxOutgoing; k > lim {
				bad = append(bad, fmt.Sprintf("%s has %d outgoing > %d", h, k, lim))
			}
		}
		for h, k := range u.In {
			if lim := s.Cluster(s.Hosts[h].Cluster).MaxIncoming; k > lim {
				bad = append(bad, fmt.Sprintf("%s has %d incoming > %d", h, k, lim))
			}
		}
		for cl, k := range u.Cluster {
			if lim := s.Cluster(cl).MaxConcurrent; k > lim {
				bad = append(bad, fmt.Sprintf("cluster %s has %d running > %d", cl, k, lim))
			}
		}
		granted := map[string]uint64{}
		for _, m := range s.Running() {
			if s.Sent(m) {
				// its last bytes overcommit the network on purpose
				// (fsm.TransferSent); its completion is unlimited
				continue
			}
			granted[m.Cluster] += m.GrantedMiB
		}
		for name, sum := range granted {
			if cl := s.Cluster(name); cl.BandwidthMode == fsm.BandwidthAuto && sum > cl.MigrationNetMiB {
				bad = append(bad, fmt.Sprintf("cluster %s grants %d MiB/s > its %d MiB/s network", name, sum, cl.MigrationNetMiB))
			}
		}
	})
	for _, h := range c.Reg.Hosts() {
		limit := c.hostMem[h.Name()]
		var used uint64
		for _, name := range h.VMNames() {
			if spec, _, ok := h.VM(name); ok {
				used += spec.MemoryMiB
			}
		}
		if used > limit {
			bad = append(bad, fmt.Sprintf("sim host %s holds %d MiB of VMs > %d MiB", h.Name(), used, limit))
		}
	}
	return bad, running
}

// Stop ends sampling and returns samples taken and violations seen.
func (w *SlotWatch) Stop() (samples int, violations []string, maxRunning int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Samples, w.Violations, w.MaxRunning
}

// VMPlacement maps every VM to the sim hosts that hold it: after every
// failure path each VM must be on exactly one.
func (c *Cluster) VMPlacement() map[string][]string {
	out := map[string][]string{}
	for _, h := range c.Reg.Hosts() {
		for _, name := range h.VMNames() {
			out[name] = append(out[name], h.Name())
		}
	}
	return out
}
