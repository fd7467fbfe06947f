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
	// mode and the discovered facts (hostfacts.go): get merges them with
	// the configured ones.
	mode           string
	discNets       []fsm.Network
	discDomains    map[string]string
	refresh        chan struct{} // wakes the facts loop
	discoveredOnce bool
}

func (r *resources) init(nets []fsm.Network, domains map[string]string, mode string) {
	r.kick, r.refresh = make(chan struct{}, 1), make(chan struct{}, 1)
	r.networks, r.domains, r.mode = slices.Clone(nets), maps.Clone(domains), mode
}

// get returns copies: callers may keep them. Until a first discovery, a
// host offers its configured facts.
func (r *resources) get() ([]fsm.Network, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mode := r.mode
	if !r.discoveredOnce {
		mode = FactsConfigured
	}
	return mergeFacts(mode, r.networks, r.domains, r.discNets, r.discDomains)
}

// setDiscovered records what discovery found and reports what changed.
func (r *resources) setDiscovered(nets []fsm.Network, domains map[string]string) (added, removed []string, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed = !r.discoveredOnce || !slices.Equal(nets, r.discNets) || !maps.Equal(domains, r.discDomains)
	added, removed = diffNets(r.discNets, nets), diffNets(nets, r.discNets)
	r.discNets, r.discDomains, r.discoveredOnce = slices.Clone(nets), maps.Clone(domains), true
	return added, removed, changed
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
	n.kickInventory()
}
