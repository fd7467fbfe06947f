package node

import (
	"errors"
	"net/http"
	"sort"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// The gossip and Raft views of one host (meshctl members, meshctl raft
// peers), as Consul's `members` and `operator raft list-peers`: what this
// host sees, not the replicated state, so that an operator can tell a host
// gossip lost from one Raft dropped.

func (n *Node) handleMembers(w http.ResponseWriter, r *http.Request) {
	if _, err := readQuery(r.URL.RawQuery); err != nil {
		writeErr(w, err)
		return
	}
	out := []api.Member{}
	for _, m := range n.gossip.Members() {
		nets := make([]api.Network, 0, len(m.Facts.Networks))
		for _, nw := range m.Facts.Networks {
			nets = append(nets, api.Network{Name: nw.Name, VLAN: nw.VLAN})
		}
		out = append(out, api.Member{Name: m.Name, Addr: m.Addr, Status: string(m.Status), Cluster: m.Facts.Cluster,
			Hypervisor: m.Facts.Hypervisor, Version: m.Facts.Version, InMesh: m.Boot.InMesh,
			Networks: nets, StorageDomains: m.Facts.StorageDomains})
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRaftPeers(w http.ResponseWriter, r *http.Request) {
	if _, err := readQuery(r.URL.RawQuery); err != nil {
		writeErr(w, err)
		return
	}
	cfg, err := n.raftConfig()
	if err != nil {
		writeErr(w, err)
		return
	}
	_, leader := n.raft.LeaderWithID()
	out := []api.RaftPeer{}
	for _, s := range cfg {
		suffrage := "voter"
		if s.Suffrage != raft.Voter {
			suffrage = "nonvoter"
		}
		out = append(out, api.RaftPeer{ID: string(s.ID), Address: string(s.Address), Suffrage: suffrage, Leader: s.ID == leader})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// clusterNames are the clusters the state knows: those a host belongs to
// and those whose settings were written.
func clusterNames(s *fsm.State) []string {
	seen := map[string]bool{}
	for name := range s.Clusters {
		seen[name] = true
	}
	for _, h := range s.Hosts {
		seen[h.Cluster] = true
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func clusterKnown(s *fsm.State, name string) bool {
	if _, ok := s.Clusters[name]; ok {
		return true
	}
	for _, h := range s.Hosts {
		if h.Cluster == name {
			return true
		}
	}
	return false
}

// unknownCluster is the 404 of a cluster no host belongs to and no one
// configured: a typo in `meshctl cluster NAME` is an error, not a page of
// defaults (and a PUT of it would create it).
func unknownCluster(s *fsm.State, name string) error {
	return notFound("no such cluster %q (known: %v); meshctl cluster --create makes a new one", name, clusterNames(s))
}

func (n *Node) handleClusters(w http.ResponseWriter, r *http.Request) {
	if _, err := readQuery(r.URL.RawQuery); err != nil {
		writeErr(w, err)
		return
	}
	out := []fsm.Cluster{}
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range clusterNames(s) {
			out = append(out, s.Cluster(name))
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// A write naming an object the state does not hold (drain of a host that
// is not a member, cancel of a migration no one queued) is refused by the
// FSM as rejected (409), which is what a refusal of a known object also
// is. To the operator the first is a typo (404, meshctl exit 2): after the
// refusal the replica has applied the write's entry (propose waits for
// it), so an object still absent from it did not exist when the leader
// refused.

// unknownHost turns a rejected write about a host the state does not hold
// into a 404.
func (n *Node) unknownHost(err error, host string) error {
	return n.unknownAfter(err, func(s *fsm.State) bool { return s.Hosts[host] != nil }, "no such host %q", host)
}

// unknownMigration turns a rejected write about a migration the state does
// not hold into a 404.
func (n *Node) unknownMigration(err error, id string) error {
	return n.unknownAfter(err, func(s *fsm.State) bool { return s.Migrations[id] != nil }, "no such migration %q", id)
}

func (n *Node) unknownAfter(err error, exists func(*fsm.State) bool, format string, name string) error {
	if !errors.Is(err, fsm.ErrRejected) {
		return err
	}
	known := true
	n.fsm.Read(func(s *fsm.State) { known = exists(s) })
	if known {
		return err
	}
	return notFound(format+" (%v)", name, err)
}
