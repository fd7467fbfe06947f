package api

// Status is the answer of GET /v1/status: the Raft view of the node asked.
type Status struct {
	Self         string   `json:"self"`
	RaftState    string   `json:"raft_state"`
	Leader       string   `json:"leader"`
	Voters       []string `json:"voters"`
	Nonvoters    []string `json:"nonvoters"`
	LastIndex    uint64   `json:"last_index"`
	AppliedIndex uint64   `json:"applied_index"`
	// Term is this host's current Raft term.
	Term    uint64 `json:"term,omitempty"`
	Hosts   int    `json:"hosts"`
	VMs     int    `json:"vms"`
	Queued  int    `json:"queued"`
	Running int    `json:"running"`
	// GossipMembers counts the hosts gossip shows alive, this one included:
	// 1 means this host is not in a mesh.
	GossipMembers int `json:"gossip_members"`
	// JoinError is the last failed gossip join while this host is alone
	// (a wrong gossip key names itself here).
	JoinError string `json:"join_error,omitempty"`
}

// HostView is a host with its Raft role and VM count (GET /v1/hosts).
type HostView struct {
	Host
	RaftRole string `json:"raft_role"`
	VMs      int    `json:"vms"`
}

// MigrateRequest is the body of POST /v1/migrations.
type MigrateRequest struct {
	// VM is the VM's UUID, or a name exactly one VM has.
	VM           string `json:"vm"`
	To           string `json:"to,omitempty"`
	Policy       string `json:"policy,omitempty"`
	BandwidthMiB uint64 `json:"bandwidth_mib,omitempty"`
	// Parallel is the number of connections; 0: the cluster's default.
	Parallel int  `json:"parallel,omitempty"`
	DryRun   bool `json:"dry_run,omitempty"`
}

// MigrateResponse answers a migrate request: the queued ID, or for a dry
// run every host's check results.
type MigrateResponse struct {
	ID         string      `json:"id,omitempty"`
	Placement  string      `json:"placement,omitempty"`
	Candidates []Candidate `json:"candidates,omitempty"`
}

// CancelResponse answers POST /v1/migrations/{id}/cancel.
type CancelResponse struct {
	ID string `json:"id"`
}

// DrainRequest is the body of POST /v1/hosts/{name}/drain.
type DrainRequest struct {
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// HostMigrations answers a drain or an activate: the host and the
// migrations queued for it.
type HostMigrations struct {
	Host       string   `json:"host"`
	Migrations []string `json:"migrations"`
}

// HostResponse answers POST /v1/hosts/{name}/drain/cancel.
type HostResponse struct {
	Host string `json:"host"`
}

// ActivateRequest is the body of POST /v1/hosts/{name}/activate.
type ActivateRequest struct {
	// Return moves the VMs its last drain moved away back to the host.
	Return bool `json:"return,omitempty"`
}

// LeaveRequest is the body of POST /v1/leave.
type LeaveRequest struct {
	// TimeoutSeconds bounds the drain; 0 uses the node's drain timeout.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// LeaveReport answers a leave: how the drain before it ended.
type LeaveReport struct {
	Host       string            `json:"host"`
	Drain      string            `json:"drain"`
	Moved      map[string]string `json:"moved,omitempty"`
	Unmovable  map[string]string `json:"unmovable,omitempty"`
	TimedOut   bool              `json:"timed_out,omitempty"`
	DurationMs int64             `json:"duration_ms"`
}
