package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// VMSettingsRequest is the body of PUT /v1/vms/{vm}/settings: the
// settings to change (nil leaves one as it is).
type VMSettingsRequest struct {
	// Migratable false pins the VM to its host; true removes the pin.
	Migratable *bool `json:"migratable,omitempty"`
	// Policy and BandwidthMiB are the VM's own convergence policy and
	// cap (MiB/s), used by migrations asked without theirs (drains,
	// balancing); "" and 0 go back to the cluster's.
	Policy       *string `json:"policy,omitempty"`
	BandwidthMiB *uint64 `json:"bandwidth_mib,omitempty"`
}

// VMSettings are an operator's settings of one VM, as stored.
type VMSettings struct {
	VM           string    `json:"vm"`
	Migratable   *bool     `json:"migratable,omitempty"`
	Policy       string    `json:"policy,omitempty"`
	BandwidthMiB uint64    `json:"bandwidth_mib,omitempty"`
	By           string    `json:"by,omitempty"`
	Since        time.Time `json:"since"`
}

// SetVM changes a VM's settings (vm: its UUID, or a name one VM has).
func (c *Client) SetVM(ctx context.Context, vm string, req VMSettingsRequest) error {
	return c.Do(ctx, http.MethodPut, "/v1/vms/"+url.PathEscape(vm)+"/settings", req, nil)
}
