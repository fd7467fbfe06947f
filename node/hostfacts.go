package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// Host facts discovered from the host, as VDSM reports a host's networks
// from the host itself: the networks and storage domains a host offers
// are read from the host (its Linux bridges and VLAN links, libvirt's
// networks and shared storage pools) and gossiped with the configured
// ones, so that a VLAN added on a host is known to the mesh within
// FactsInterval, without a restart or a reload.

// Host facts modes (Config.HostFacts, meshd --host-facts).
const (
	// FactsMerge gossips the configured networks and storage domains and
	// the discovered ones (the default with libvirt).
	FactsMerge = "merge"
	// FactsDiscovered gossips only what was discovered: the configured
	// ones are ignored.
	FactsDiscovered = "discovered"
	// FactsConfigured gossips only the configured ones (no discovery; what
	// a sim hypervisor always does).
	FactsConfigured = "configured"
)

// FactsSource is a hypervisor that reports what its host offers guests:
// libvirt's active networks and its shared storage pools (name → the
// directory their images live under). migrate/virt implements it; the sim
// hypervisor does not, and keeps the configured facts.
type FactsSource interface {
	HostResources(ctx context.Context) (nets []fsm.Network, pools map[string]string, err error)
}

// discoverFacts reads the host: its links (hostLinks) and the hypervisor's
// networks and pools.
func (n *Node) discoverFacts(ctx context.Context, src FactsSource) ([]fsm.Network, map[string]string, error) {
	links, err := hostLinks()
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: links: %w", n.cfg.Name, err)
	}
	nets, pools, err := src.HostResources(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: %w", n.cfg.Name, err)
	}
	// A name the state cannot hold (a link named with a '/') is left out,
	// not the whole host's facts refused; so is any beyond the list limit.
	var keep []fsm.Network
	for _, nw := range sortedNets(append(links, nets...)) {
		if fsm.CheckName("network", nw.Name) == nil && len(keep) < fsm.MaxList/2 {
			keep = append(keep, nw)
		}
	}
	for name := range pools {
		if fsm.CheckName("storage domain", name) != nil || len(pools) > fsm.MaxList/2 {
			delete(pools, name)
		}
	}
	return keep, pools, nil
}

// factsLoop discovers the host's facts every FactsInterval and when asked
// (RefreshFacts, on SIGHUP), and wakes the inventory loop to gossip them
// when they changed.
func (n *Node) factsLoop(src FactsSource) {
	tick := time.NewTicker(n.cfg.FactsInterval)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		nets, pools, err := n.discoverFacts(ctx, src)
		cancel()
		if err != nil {
			// The last discovered facts stay: a libvirt restart must not
			// make the host lose its networks for a moment.
			n.log.Warn("discover host facts (the last discovered stay)", "err", err)
		} else if added, removed, changed := n.res.setDiscovered(nets, pools); changed {
			n.log.Info("host facts discovered", "networks", netNames(nets), "storage_pools", slices.Sorted(maps.Keys(pools)),
				"added", added, "removed", removed)
			n.kickInventory()
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-n.res.refresh:
		}
	}
}

// RefreshFacts discovers the host's facts now (meshd's reload calls it),
// when discovery runs.
func (n *Node) RefreshFacts() {
	select {
	case n.res.refresh <- struct{}{}:
	default:
	}
}

func (n *Node) kickInventory() {
	select {
	case n.res.kick <- struct{}{}:
	default:
	}
}

// mergeFacts is what a host gossips: the configured networks then the
// discovered ones not configured, and the configured storage domains with
// the discovered pools whose name and directory no configured domain has
// (the operator's name for a directory wins: a disk maps to one domain).
func mergeFacts(mode string, cNets []fsm.Network, cDoms map[string]string, dNets []fsm.Network, dDoms map[string]string) ([]fsm.Network, map[string]string) {
	switch mode {
	case FactsConfigured:
		return slices.Clone(cNets), maps.Clone(cDoms)
	case FactsDiscovered:
		return slices.Clone(dNets), maps.Clone(dDoms)
	}
	nets := slices.Clone(cNets)
	for _, nw := range dNets {
		if !slices.Contains(nets, nw) {
			nets = append(nets, nw)
		}
	}
	doms := maps.Clone(cDoms)
	if doms == nil {
		doms = map[string]string{}
	}
	dirs := map[string]bool{}
	for _, dir := range cDoms {
		dirs[cleanDir(dir)] = true
	}
	for name, dir := range dDoms {
		if _, taken := doms[name]; !taken && !dirs[cleanDir(dir)] {
			doms[name] = dir
		}
	}
	return nets, doms
}

func cleanDir(d string) string {
	for len(d) > 1 && d[len(d)-1] == '/' {
		d = d[:len(d)-1]
	}
	return d
}

func sortedNets(nets []fsm.Network) []fsm.Network {
	out := []fsm.Network{}
	for _, nw := range nets {
		if nw.Name != "" && !slices.Contains(out, nw) {
			out = append(out, nw)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].VLAN < out[j].VLAN
	})
	return out
}

func netNames(nets []fsm.Network) []string {
	out := make([]string, len(nets))
	for i, nw := range nets {
		out[i] = nw.Name
		if nw.VLAN != 0 {
			out[i] = fmt.Sprintf("%s.%d", nw.Name, nw.VLAN)
		}
	}
	return out
}

// diffNets names the networks of b not in a.
func diffNets(a, b []fsm.Network) []string {
	var out []fsm.Network
	for _, nw := range b {
		if !slices.Contains(a, nw) {
			out = append(out, nw)
		}
	}
	return netNames(out)
}
