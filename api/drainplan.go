package api

import (
	"context"
	"net/http"
	"net/url"
)

// DrainPlan is what draining a host would do (GET /v1/hosts/{name}/drain/plan):
// the leader's scheduler run on a copy of the state. Moves are in the
// order they would start; a move's time is its memory over its granted
// bandwidth; TotalSeconds is when the last one ends, LimitSeconds the
// moved memory over the migration network's capacity (NetMiB).
type DrainPlan struct {
	Host         string           `json:"host"`
	Moves        []PlannedMove    `json:"moves"`
	Unmovable    []PlannedRefusal `json:"unmovable"`
	TotalSeconds float64          `json:"total_seconds"`
	LimitSeconds float64          `json:"limit_seconds"`
	NetMiB       uint64           `json:"net_mib"`
}

// PlannedMove is one VM's predicted migration.
type PlannedMove struct {
	VM           string  `json:"vm"`
	VMUUID       string  `json:"vm_uuid,omitempty"`
	MemoryMiB    uint64  `json:"memory_mib"`
	Dest         string  `json:"dest"`
	Reason       string  `json:"reason"`
	BandwidthMiB uint64  `json:"bandwidth_mib"`
	StartSeconds float64 `json:"start_seconds"`
	Seconds      float64 `json:"seconds"`
	// DirtyMiB is the guest's dirty rate the prediction used, MiB/s (0:
	// never sampled, one pass predicted).
	DirtyMiB float64 `json:"dirty_mib,omitempty"`
	// Running: the migration runs already; Seconds is what remains.
	Running bool `json:"running,omitempty"`
}

// PlannedRefusal is a VM the drain would leave, with the check or rule
// that blocks it.
type PlannedRefusal struct {
	VM     string `json:"vm"`
	Reason string `json:"reason"`
}

// DrainPlan asks for the plan of draining host; nothing changes.
func (c *Client) DrainPlan(ctx context.Context, host string) (DrainPlan, error) {
	var p DrainPlan
	err := c.Do(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(host)+"/drain/plan", nil, &p)
	return p, err
}
