package node

import (
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/hostmesh/hostmesh/fsm"
)

// resources are the networks and storage domains this host declares in
// meshd's configuration. meshd's reload (SIGHUP) replaces them while the
// node runs: the next inventory pass, started at once, gossips them, so a
// network added to a host is known to the mesh without a restart.
type resources struct {
	mu       sync.Mutex
	networks []fsm.Network
	domains  map[string]string
	kick     chan struct{} // wakes the inventory loop
}

func (r *resources) init(nets []fsm.Network, domains map[string]string) {
	r.kick = make(chan struct{}, 1)
	r.networks, r.domains = slices.Clone(nets), maps.Clone(domains)
}

// get returns copies: callers may keep them.
func (r *resources) get() ([]fsm.Network, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.networks), maps.Clone(r.domains)
}

func (r *resources) domainNames() []string {
	_, d := r.get()
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetResources replaces the networks and storage domains this host offers
// and has the inventory loop gossip them now.
func (n *Node) SetResources(nets []fsm.Network, domains map[string]string) {
	n.res.mu.Lock()
	n.res.networks, n.res.domains = slices.Clone(nets), maps.Clone(domains)
	n.res.mu.Unlock()
	select {
	case n.res.kick <- struct{}{}:
	default:
	}
}
