package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Affinity rule kinds (see README: placement).
const (
	AffinityTogether   = "vm-together"
	AffinityApart      = "vm-apart"
	AffinityHostMust   = "host-must"
	AffinityHostPrefer = "host-prefer"
	AffinityHostAvoid  = "host-avoid"
)

// AffinityRule is one rule as stored (GET /v1/affinity).
type AffinityRule struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Hard    bool      `json:"hard"`
	VMs     []string  `json:"vms"`
	VMNames []string  `json:"vm_names,omitempty"`
	Hosts   []string  `json:"hosts,omitempty"`
	By      string    `json:"by,omitempty"`
	Since   time.Time `json:"since"`
}

// AffinityRequest is the body of POST /v1/affinity. VMs are UUIDs or
// names one VM has.
type AffinityRequest struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Hard  bool     `json:"hard"`
	VMs   []string `json:"vms"`
	Hosts []string `json:"hosts,omitempty"`
}

// Affinity lists the affinity rules by name.
func (c *Client) Affinity(ctx context.Context) ([]AffinityRule, error) {
	var rs []AffinityRule
	err := c.Do(ctx, http.MethodGet, "/v1/affinity", nil, &rs)
	return rs, err
}

// CreateAffinity adds a rule.
func (c *Client) CreateAffinity(ctx context.Context, req AffinityRequest) (AffinityRule, error) {
	var r AffinityRule
	err := c.Do(ctx, http.MethodPost, "/v1/affinity", req, &r)
	return r, err
}

// DeleteAffinity removes a rule.
func (c *Client) DeleteAffinity(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/affinity/"+url.PathEscape(name), nil, nil)
}
