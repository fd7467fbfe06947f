package api

import (
	"context"
	"net/http"
	"net/url"
)

// BalancePlan is one balancing pass's decision for a cluster (GET
// /v1/clusters/{name}/balance/plan, `meshctl balance --dry-run`): the load of
// each Up host, the spread between the most and the least loaded, and
// the moves that bring it within the threshold, as far as the budget,
// the hold, the rules and the checks allow.
type BalancePlan struct {
	Cluster   string `json:"cluster"`
	Mode      string `json:"mode"`
	Threshold int    `json:"threshold"`
	// Load is each Up host's load in percent (memory of its VMs over its
	// memory, or vCPUs over CPUs), before the moves.
	Load map[string]float64 `json:"load"`
	// Spread is the most loaded host's load minus the least loaded's,
	// in percentage points, before the moves; After once they are done.
	Spread float64 `json:"spread"`
	After  float64 `json:"after"`
	// Budget is how many moves the pass was allowed (budget left this
	// hour, and free cluster slots).
	Budget int           `json:"budget"`
	Moves  []BalanceMove `json:"moves"`
	// Refused are the VMs of the loaded hosts that the pass could not
	// move, each with the rule or check that keeps it.
	Refused []BalanceRefusal `json:"refused"`
	// Idle says why nothing moves when nothing does ("" otherwise).
	Idle string `json:"idle,omitempty"`
}

// BalanceMove is one move a pass queues.
type BalanceMove struct {
	VM     string `json:"vm"`
	VMKey  string `json:"vm_key"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// BalanceRefusal is a VM a pass would have liked to move and could not.
type BalanceRefusal struct {
	VM     string `json:"vm"`
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// BalancePlan asks what the next balancing pass of cluster would do;
// nothing changes.
func (c *Client) BalancePlan(ctx context.Context, cluster string) (BalancePlan, error) {
	var p BalancePlan
	err := c.Do(ctx, http.MethodGet, "/v1/clusters/"+url.PathEscape(cluster)+"/balance/plan", nil, &p)
	return p, err
}
