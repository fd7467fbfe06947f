package api

import (
	"context"
	"net/http"
	"net/url"
)

// Member is one host as the asked meshd's gossip sees it (GET
// /v1/members), as `consul members`: gossip liveness, not Raft.
type Member struct {
	Name string `json:"name"`
	// Addr is the ip:port the member gossips on.
	Addr   string `json:"addr"`
	Status string `json:"status"` // alive, suspect, dead, left
	// Cluster, Hypervisor and Version are from the member's gossiped facts.
	Cluster    string `json:"cluster"`
	Hypervisor string `json:"hypervisor,omitempty"`
	Version    string `json:"version,omitempty"`
	// InMesh: the member says it holds Raft state (bootstrapped or added).
	InMesh bool `json:"in_mesh"`
	// Networks and StorageDomains are the facts the member gossips.
	Networks       []Network `json:"networks,omitempty"`
	StorageDomains []string  `json:"storage_domains,omitempty"`
}

// RaftPeer is one server of the Raft configuration as the asked meshd
// holds it (GET /v1/raft/peers), as `consul operator raft list-peers`.
type RaftPeer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // voter, nonvoter
	Leader   bool   `json:"leader"`
}

// Members lists every host the asked meshd's gossip has seen.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := c.Do(ctx, http.MethodGet, "/v1/members", nil, &ms)
	return ms, err
}

// RaftPeers lists the Raft configuration's servers.
func (c *Client) RaftPeers(ctx context.Context) ([]RaftPeer, error) {
	var ps []RaftPeer
	err := c.Do(ctx, http.MethodGet, "/v1/raft/peers", nil, &ps)
	return ps, err
}

// Clusters lists the clusters the mesh knows: those with a host and those
// whose settings were written.
func (c *Client) Clusters(ctx context.Context) ([]Cluster, error) {
	var cs []Cluster
	err := c.Do(ctx, http.MethodGet, "/v1/clusters", nil, &cs)
	return cs, err
}

// CreateCluster writes the settings of a cluster the mesh may not know
// yet: settings holds the fields to set by their JSON names, the others
// take the defaults. (SetCluster refuses an unknown cluster with a 404, so
// that a typo never creates one.)
func (c *Client) CreateCluster(ctx context.Context, name string, settings map[string]any) (Cluster, error) {
	var out Cluster
	err := c.Do(ctx, http.MethodPut, "/v1/clusters/"+url.PathEscape(name)+"?create=true", settings, &out)
	return out, err
}
