package api

import "time"

// The mesh's state as meshd answers it. Each type mirrors its twin in
// package fsm (the replicated state) field for field, in JSON.

// HostState is a host's lifecycle state, named as oVirt names them.
type HostState string

// Host states.
const (
	HostUp                      HostState = "Up"
	HostPreparingForMaintenance HostState = "PreparingForMaintenance"
	HostMaintenance             HostState = "Maintenance"
	HostNonOperational          HostState = "NonOperational"
	HostDown                    HostState = "Down"
	HostLeft                    HostState = "Left"
)

// Network is a virtual network a host offers. VLAN 0 means untagged.
type Network struct {
	Name string `json:"name"`
	VLAN int    `json:"vlan,omitempty"`
}

// Host is a member of the mesh: the facts it gossips and the state the
// leader recorded for it.
type Host struct {
	Name          string `json:"name"`
	Cluster       string `json:"cluster"`
	APIAddr       string `json:"api_addr"`
	RaftAddr      string `json:"raft_addr"`
	MgmtAddr      string `json:"mgmt_addr"`
	MigrationAddr string `json:"migration_addr"`
	HypervisorURI string `json:"hypervisor_uri"`
	Hypervisor    string `json:"hypervisor"`

	Arch      string   `json:"arch"`
	CPUModel  string   `json:"cpu_model"`
	CPUFlags  []string `json:"cpu_flags,omitempty"`
	CPUModels []string `json:"cpu_models,omitempty"`
	// CPUXML is the host's CPU definition (libvirt's host-model CPU).
	CPUXML string `json:"cpu_xml,omitempty"`
	// CPUVerdicts are the host's libvirt's answers for the cluster's
	// baseline and guest CPUs.
	CPUVerdicts []CPUVerdict `json:"cpu_verdicts,omitempty"`

	MemTotalMiB uint64 `json:"mem_total_mib"`
	MemFreeMiB  uint64 `json:"mem_free_mib"`
	// MemReservedMiB is held by the hypervisor for incoming migrations
	// (not in MemFreeMiB).
	MemReservedMiB uint64 `json:"mem_reserved_mib,omitempty"`
	CPUs           int    `json:"cpus"`
	CPUsFree       int    `json:"cpus_free"`

	Networks       []Network `json:"networks,omitempty"`
	StorageDomains []string  `json:"storage_domains,omitempty"`
	Version        string    `json:"version"`

	State       HostState `json:"state"`
	StateReason string    `json:"state_reason,omitempty"`
	Gen         uint64    `json:"gen"`
	Since       time.Time `json:"since,omitzero"`
}

// NIC is a guest network interface.
type NIC struct {
	MAC     string `json:"mac"`
	Network string `json:"network"`
	VLAN    int    `json:"vlan,omitempty"`
}

// Disk is a guest disk; an empty StorageDomain means a local disk.
type Disk struct {
	Target        string `json:"target"`
	Source        string `json:"source"`
	StorageDomain string `json:"storage_domain,omitempty"`
	Cache         string `json:"cache"`
	Format        string `json:"format,omitempty"`
	SizeBytes     uint64 `json:"size_bytes,omitempty"`
}

// VM states as the hypervisor reports them.
const (
	VMRunning = "running"
	VMPaused  = "paused"
	VMShutoff = "shutoff"
	VMUnknown = "unknown"
)

// VM is a guest and the host that runs it.
type VM struct {
	Name      string   `json:"name"`
	UUID      string   `json:"uuid,omitempty"`
	Host      string   `json:"host"`
	MemoryMiB uint64   `json:"memory_mib"`
	VCPUs     int      `json:"vcpus"`
	CPUModel  string   `json:"cpu_model,omitempty"`
	CPUFlags  []string `json:"cpu_flags,omitempty"`
	// CPUXML is the guest's <cpu> definition.
	CPUXML string `json:"cpu_xml,omitempty"`
	NICs   []NIC  `json:"nics,omitempty"`
	Disks  []Disk `json:"disks,omitempty"`
	// HostDevices are the passthrough host devices: any makes the VM
	// not migratable.
	HostDevices []string `json:"host_devices,omitempty"`
	State       string   `json:"state"`
	Migration   string   `json:"migration,omitempty"`
	// MovedIndex is the Raft index of the entry that last moved the VM.
	MovedIndex uint64 `json:"moved_index,omitempty"`
	// Alarm is the alarm that stands for the VM (GET /v1/vms), if any.
	Alarm *Alarm `json:"alarm,omitempty"`
	// Settings are an operator's settings of the VM (GET /v1/vms).
	Settings *VMSettings `json:"settings,omitempty"`
	// NotMigratable says why the VM may go nowhere (GET /v1/vms).
	NotMigratable string `json:"not_migratable,omitempty"`
}

// AlarmSplitBrain: one VM (one UUID) runs on two hosts at once; it is not
// migrated until only one host runs it.
const AlarmSplitBrain = "split-brain"

// AlarmMigrationUnsettled: a migration's job ended unwatched and its two
// hosts disagree (the VM runs on both, or on neither); the migration stays
// Running until they agree or an operator cancels it.
const AlarmMigrationUnsettled = "migration-unsettled"

// Alarm is a condition the mesh cannot resolve alone.
type Alarm struct {
	Kind    string    `json:"kind"`
	VMUUID  string    `json:"vm_uuid"`
	VM      string    `json:"vm"`
	Hosts   []string  `json:"hosts"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
	Index   uint64    `json:"index"`
}

// MigrationState is the phase of a migration.
type MigrationState string

// Migration states: Queued waits for slots, Running holds them, the rest
// are final.
const (
	MigQueued    MigrationState = "Queued"
	MigRunning   MigrationState = "Running"
	MigSucceeded MigrationState = "Succeeded"
	MigFailed    MigrationState = "Failed"
	MigCancelled MigrationState = "Cancelled"
)

// Final reports whether no further transition is possible.
func (s MigrationState) Final() bool {
	return s == MigSucceeded || s == MigFailed || s == MigCancelled
}

// Progress is the latest job-stats sample of a running migration.
type Progress struct {
	Percent         float64 `json:"percent"`
	ElapsedMs       int64   `json:"elapsed_ms"`
	TotalBytes      uint64  `json:"total_bytes"`
	ProcessedBytes  uint64  `json:"processed_bytes"`
	RemainingBytes  uint64  `json:"remaining_bytes"`
	MiBps           float64 `json:"mib_per_s"`
	DirtyRateBps    uint64  `json:"dirty_rate_bps"`
	Iteration       int     `json:"iteration"`
	PostCopy        bool    `json:"postcopy,omitempty"`
	MaxDowntimeMs   int64   `json:"max_downtime_ms,omitempty"`
	ThrottlePercent int     `json:"throttle_percent,omitempty"`
	PostCopyAtMs    int64   `json:"postcopy_at_ms,omitempty"`
	SuspendedAtMs   int64   `json:"suspended_at_ms,omitempty"`
	FirstByteMs     int64   `json:"first_byte_ms,omitempty"`
	FirstPassBytes  uint64  `json:"first_pass_bytes,omitempty"`
	DirtySetBytes   uint64  `json:"dirty_set_bytes,omitempty"`
	// FallBps is how fast the remaining data fell over the current pass
	// (fsm.Progress.FallBps).
	FallBps uint64 `json:"fall_bps,omitempty"`
	// LastFirstPassBytes is what the VM's last migration's first pass
	// sent (fsm.Progress.LastFirstPassBytes).
	LastFirstPassBytes uint64 `json:"last_first_pass_bytes,omitempty"`
	// Prediction is the source's prediction before the job started (auto).
	Prediction *Prediction `json:"prediction,omitempty"`
	Actions    []string    `json:"actions,omitempty"`
	// At is when the source took the sample.
	At time.Time `json:"at,omitzero"`
}

// Prediction is a migration's predicted course (fsm.Prediction).
type Prediction struct {
	DirtyRateBps  uint64 `json:"dirty_rate_bps"`
	Sampled       bool   `json:"sampled,omitempty"`
	MemBytes      uint64 `json:"mem_bytes"`
	DataBytes     uint64 `json:"data_bytes"`
	BandwidthBps  uint64 `json:"bandwidth_bps"`
	Converges     bool   `json:"converges"`
	Passes        int    `json:"passes,omitempty"`
	TotalMs       int64  `json:"total_ms"`
	Choice        string `json:"choice,omitempty"`
	DirtySetBytes uint64 `json:"dirty_set_bytes,omitempty"`
	SetupMs       int64  `json:"setup_ms,omitempty"`
	DataFrom      string `json:"data_from,omitempty"`
}

// Migration is one request to move one VM, from queue to result.
type Migration struct {
	ID              string         `json:"id"`
	VM              string         `json:"vm"`
	VMUUID          string         `json:"vm_uuid,omitempty"`
	Source          string         `json:"source"`
	Dest            string         `json:"dest,omitempty"`
	Cluster         string         `json:"cluster"`
	State           MigrationState `json:"state"`
	Policy          string         `json:"policy"`
	BandwidthMiB    uint64         `json:"bandwidth_mib,omitempty"`
	GrantedMiB      uint64         `json:"granted_mib,omitempty"`
	Parallel        int            `json:"parallel,omitempty"`
	Pinned          bool           `json:"pinned,omitempty"`
	Drain           string         `json:"drain,omitempty"`
	Attempt         int            `json:"attempt"`
	Tried           []string       `json:"tried,omitempty"`
	PlacementReason string         `json:"placement_reason,omitempty"`
	RequestedBy     string         `json:"requested_by,omitempty"`
	CancelRequested bool           `json:"cancel_requested,omitempty"`
	Progress        Progress       `json:"progress"`
	Reason          string         `json:"reason,omitempty"`
	DowntimeMs      int64          `json:"downtime_ms,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	StartedAt       time.Time      `json:"started_at,omitempty"`
	EndedAt         time.Time      `json:"ended_at,omitempty"`
	// Unsettled says why a Running migration's outcome is not known yet,
	// or what it waits for (a broken post-copy waiting to resume).
	Unsettled string `json:"unsettled,omitempty"`
}

// Bandwidth modes of a cluster.
const (
	BandwidthFixed = "fixed"
	BandwidthAuto  = "auto"
)

// Cluster holds the limits and defaults of one cluster of hosts.
type Cluster struct {
	Name            string `json:"name"`
	MaxOutgoing     int    `json:"max_outgoing"`
	MaxIncoming     int    `json:"max_incoming"`
	MaxConcurrent   int    `json:"max_concurrent"`
	BandwidthMode   string `json:"bandwidth_mode"`
	BandwidthMiB    uint64 `json:"bandwidth_mib"`
	MigrationNetMiB uint64 `json:"migration_net_mib"`
	Policy          string `json:"policy"`
	// The lists are always sent (null when empty): a PUT changes only the
	// fields it names, so an omitted empty list would keep the old one.
	RequiredNetworks []string `json:"required_networks"`
	CPUBaseline      []string `json:"cpu_baseline"`
	// The computed CPU baseline (read-only here: a PUT leaves it; POST
	// /v1/clusters/NAME/cpu-baseline recomputes it): libvirt's baseline
	// of the hosts' CPUs, its model and features, the hosts it was
	// computed from, auto or operator, and when.
	CPUBaselineXML      string    `json:"cpu_baseline_xml,omitempty"`
	CPUBaselineModel    string    `json:"cpu_baseline_model,omitempty"`
	CPUBaselineFeatures []string  `json:"cpu_baseline_features,omitempty"`
	CPUBaselineHosts    []string  `json:"cpu_baseline_hosts,omitempty"`
	CPUBaselineMode     string    `json:"cpu_baseline_mode,omitempty"`
	CPUBaselineAt       time.Time `json:"cpu_baseline_at,omitzero"`
	// MigrationTransport is TransportTLS or TransportPlain; "" (a cluster
	// set before the field existed) means TLS.
	MigrationTransport string `json:"migration_transport,omitempty"`
	// MigrationParallel is the connections per migration; 0 is auto
	// (one per 10 Gb/s of the migration network, at most the VM's vCPUs).
	MigrationParallel int `json:"migration_parallel,omitempty"`
	// OverlapMs: in auto bandwidth, a migration predicted to end its
	// transfer within this many ms lends its slot to the next one's setup
	// (0: off). Switching a cluster to auto sets 2000 unless given.
	OverlapMs int64 `json:"overlap_ms"`
	// Balance is "off" (or ""), "memory" or "cpu": the load the leader
	// evens out between the cluster's hosts. Zero threshold (percentage
	// points of spread), hold (seconds a moved VM stays) and budget
	// (balancing moves per hour) mean meshd's defaults: 10, 3600, 20.
	Balance            string `json:"balance,omitempty"`
	BalanceThreshold   int    `json:"balance_threshold,omitempty"`
	BalanceHoldSeconds int64  `json:"balance_hold_seconds,omitempty"`
	BalanceBudget      int    `json:"balance_budget,omitempty"`
}

// CPUVerdict is a host's libvirt's answer to whether a CPU definition
// (by digest) runs there, with the features it lacks.
type CPUVerdict struct {
	Digest  string   `json:"digest"`
	OK      bool     `json:"ok"`
	Missing []string `json:"missing,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// Migration transports of a cluster.
const (
	TransportTLS   = "tls"
	TransportPlain = "plain"
)

// PlainMigrations reports whether the cluster's migrations go in cleartext.
func (c Cluster) PlainMigrations() bool { return c.MigrationTransport == TransportPlain }

// Drain states.
const (
	DrainActive    = "active"
	DrainDone      = "done"
	DrainStuck     = "stuck"
	DrainCancelled = "cancelled"
)

// Drain records moving every VM off a host.
type Drain struct {
	Host        string            `json:"host"`
	State       string            `json:"state"`
	Unmovable   map[string]string `json:"unmovable,omitempty"`
	Moved       map[string]string `json:"moved,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	RequestedBy string            `json:"requested_by,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	EndedAt     time.Time         `json:"ended_at,omitempty"`
	// PredictedSeconds is the plan's prediction when the drain started;
	// ErrorPercent, once it is done, how far off it was (took/predicted - 1).
	PredictedSeconds float64 `json:"predicted_seconds,omitempty"`
	ErrorPercent     float64 `json:"error_percent,omitempty"`
}

// CheckResult is one prerequisite check of a migration to one host.
type CheckResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// String renders the result as "name: message".
func (r CheckResult) String() string { return r.Name + ": " + r.Message }

// Candidate is one host's checks and score in a dry run.
type Candidate struct {
	Host    string        `json:"host"`
	Score   float64       `json:"score"`
	Results []CheckResult `json:"results"`
	OK      bool          `json:"ok"`
	// Prediction is set on the destination the migration would take (the
	// one asked, else placement's choice) only.
	Prediction *DryRunPrediction `json:"prediction,omitempty"`
}

// DryRunPrediction is a dry run's prediction of the migration on its
// destination: the guest's dirty rate sampled on its host now, at the
// bandwidth the scheduler would grant now, as the source of an auto
// migration predicts it before its job (Choice is what auto would pick).
type DryRunPrediction struct {
	Prediction
	// Policy is the policy the migration would run (asked, the VM's, or
	// the cluster's).
	Policy string `json:"policy"`
	// GrantedMiB is the cap the scheduler would grant now; 0: unlimited
	// (nothing to predict against).
	GrantedMiB uint64 `json:"granted_mib"`
	// Chosen says how the destination was chosen: "asked" or "placement".
	Chosen string `json:"chosen"`
	// NotSampled says why the dirty rate is unknown (then the prediction
	// is one pass of the whole memory).
	NotSampled string `json:"not_sampled,omitempty"`
}
