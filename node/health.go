package node

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/gossip"
)

// Health endpoints for load balancers, systemd and orchestration. They are
// unauthenticated on purpose (as Consul's /v1/agent/health and Kubernetes'
// probes): a probe carries no token, and the answers reveal nothing but
// whether this meshd can serve. Neither calls the hypervisor or Raft's
// main loop: a probe every second must cost nothing.
//
//	GET /v1/health/live   200 while the process serves HTTP
//	GET /v1/health/ready  200 when every readiness check passes, else 503;
//	                      the body names each check and what is wrong

// staleInventories is how many inventory intervals may pass without a
// successful read before the inventory counts as stale.
const staleInventories = 3

// Readiness checks names.
const (
	readyMesh       = "mesh"
	readyLeader     = "leader"
	readyInventory  = "inventory"
	readyHypervisor = "hypervisor"
)

func (n *Node) readiness(now time.Time) api.Readiness {
	r := api.Readiness{Host: n.cfg.Name}
	add := func(name string, ok bool, msg string) {
		r.Checks = append(r.Checks, api.HealthCheck{Name: name, OK: ok, Message: msg})
		if !ok {
			r.NotReady = append(r.NotReady, name)
		}
	}

	// In the mesh: this host is a Raft server (voter or non-voter), so it
	// holds a replica, and gossip has not left.
	inRaft := false
	if cfg, err := n.raftConfig(); err == nil {
		for _, s := range cfg {
			if string(s.ID) == n.cfg.Name {
				inRaft = true
			}
		}
	}
	alive := 0
	for _, m := range n.gossip.Members() {
		if m.Status == gossip.StatusAlive {
			alive++
		}
	}
	switch {
	case !inRaft:
		add(readyMesh, false, fmt.Sprintf("%s is not in the Raft configuration yet (no replica); gossip sees %d alive", n.cfg.Name, alive))
	default:
		add(readyMesh, true, fmt.Sprintf("Raft server; gossip sees %d alive", alive))
	}

	if _, id := n.raft.LeaderWithID(); id == "" {
		add(readyLeader, false, "no Raft leader known: writes would fail")
	} else {
		add(readyLeader, true, "leader "+string(id))
	}

	last := n.inv.lastOK.Load()
	limit := staleInventories * n.cfg.InventoryInterval
	switch age := now.Sub(time.Unix(0, last)); {
	case last == 0:
		add(readyInventory, false, "the hypervisor's inventory was never read")
	case age > limit:
		add(readyInventory, false, fmt.Sprintf("inventory last read %s ago (stale after %s)", age.Round(time.Millisecond), limit))
	default:
		add(readyInventory, true, fmt.Sprintf("read %s ago", age.Round(time.Millisecond)))
	}

	if msg := n.inv.hvErr.Load(); msg != nil {
		add(readyHypervisor, false, "last call failed: "+*msg)
	} else {
		add(readyHypervisor, true, n.cfg.HypervisorKind+" answers")
	}
	r.Ready = len(r.NotReady) == 0
	return r
}

func (n *Node) handleLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Liveness{Host: n.cfg.Name, Live: true})
}

func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	rd := n.readiness(time.Now())
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}
