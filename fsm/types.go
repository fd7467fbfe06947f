// Package fsm is the replicated state of the mesh: hosts, VMs, migrations and
// the cluster settings that bound them. Every change arrives as a typed Raft log
// entry; Apply is deterministic so every replica computes the same state.
package fsm

import "time"

// HostState is the lifecycle state of a host as the leader records it. Gossip
// reports liveness; the leader turns it into one of these so that every replica
// agrees on which hosts may send or receive VMs.
type HostState string

// Host states, named as oVirt names them so operators recognise them.
const (
	HostUp                      HostState = "Up"
	HostPreparingForMaintenance HostState = "PreparingForMaintenance"
	HostMaintenance             HostState = "Maintenance"
	HostNonOperational          HostState = "NonOperational"
	HostDown                    HostState = "Down"
	HostLeft                    HostState = "Left"
)

// Network is a virtual network a host offers to guests. VLAN 0 means untagged.
type Network struct {
	Name string `json:"name"`
	VLAN int    `json:"vlan,omitempty"`
}

// HostFacts is what a host learns about itself and gossips: identity,
// addresses, CPU, capacity, networks and storage. The leader copies it into the
// replicated Host when it changes.
type HostFacts struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	// APIAddr is host:port of the meshd HTTP API.
	APIAddr string `json:"api_addr"`
	// RaftAddr is host:port of the Raft transport.
	RaftAddr string `json:"raft_addr"`
	// MgmtAddr is the management-network IP (gossip, Raft, API, libvirt control).
	MgmtAddr string `json:"mgmt_addr"`
	// MigrationAddr is the migration-network IP that receives memory and disk streams.
	MigrationAddr string `json:"migration_addr"`
	// HypervisorURI is how a peer's hypervisor reaches this host's hypervisor
	// (for libvirt: qemu+tcp://MGMT/system).
	HypervisorURI string `json:"hypervisor_uri"`
	Hypervisor    string `json:"hypervisor"` // "libvirt" or "sim"

	Arch     string   `json:"arch"`
	CPUModel string   `json:"cpu_model"`
	CPUFlags []string `json:"cpu_flags,omitempty"`
	// CPUModels are the guest CPU models the host can run.
	CPUModels []string `json:"cpu_models,omitempty"`
	// CPUXML is the host's CPU definition: the host-model CPU of libvirt's
	// domain capabilities (what a guest can get here and keep across
	// migrations), at most MaxCPUXML bytes; the leader computes the
	// cluster's baseline from these (see cpu.go).
	CPUXML string `json:"cpu_xml,omitempty"`
	// CPUVerdicts are this host's hypervisor's answers for the cluster's
	// baseline and the distinct guest CPUs of its cluster.
	CPUVerdicts []CPUVerdict `json:"cpu_verdicts,omitempty"`

	MemTotalMiB uint64 `json:"mem_total_mib"`
	MemFreeMiB  uint64 `json:"mem_free_mib"`
	// MemReservedMiB is the memory the hypervisor already holds for
	// incoming migrations, which MemFreeMiB excludes: the checks add it
	// back before they subtract the migrations headed to the host, or
	// those would be counted twice (issue 10).
	MemReservedMiB uint64 `json:"mem_reserved_mib,omitempty"`
	CPUs           int    `json:"cpus"`
	CPUsFree       int    `json:"cpus_free"`

	Networks       []Network `json:"networks,omitempty"`
	StorageDomains []string  `json:"storage_domains,omitempty"`
	Version        string    `json:"version"`
}

// Host is a member of the mesh as recorded in the replicated state.
type Host struct {
	HostFacts
	State HostState `json:"state"`
	// StateReason says why the host is in a state other than Up.
	StateReason string `json:"state_reason,omitempty"`
	// Gen counts the fact updates the leader applied for this host.
	Gen uint64 `json:"gen"`
	// Since is when the host entered its state (log version 2).
	Since time.Time `json:"since,omitzero"`
}

// NIC is a guest network interface.
type NIC struct {
	MAC     string `json:"mac"`
	Network string `json:"network"`
	VLAN    int    `json:"vlan,omitempty"`
}

// Disk is a guest disk. StorageDomain names a domain every host of the cluster
// may see; empty means the disk is local to the host and must be copied live.
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
	VMUnknown = "unknown" // its host is Down: nobody can say
)

// VM is a guest and the host that runs it. Exactly one host runs a VM; only a
// finished migration moves it.
type VM struct {
	Name      string   `json:"name"`
	UUID      string   `json:"uuid,omitempty"`
	Host      string   `json:"host"`
	MemoryMiB uint64   `json:"memory_mib"`
	VCPUs     int      `json:"vcpus"`
	CPUModel  string   `json:"cpu_model,omitempty"`
	CPUFlags  []string `json:"cpu_flags,omitempty"`
	// CPUXML is the guest's CPU definition (the domain XML's <cpu>
	// element, at most MaxCPUXML bytes); empty for a guest with none
	// (libvirt's default model), which the cpu-model check judges by its
	// flag list.
	CPUXML string `json:"cpu_xml,omitempty"`
	NICs   []NIC  `json:"nics,omitempty"`
	Disks  []Disk `json:"disks,omitempty"`
	// HostDevices are the host devices passed through to the guest
	// (<hostdev> in the domain XML: "pci 0000:03:00.0", "usb 046d:c52b",
	// "mdev UUID"). A guest that holds a physical device of its host
	// cannot migrate live: the device does not exist elsewhere and QEMU
	// cannot move its state. Any entry makes the VM not migratable.
	HostDevices []string `json:"host_devices,omitempty"`
	State       string   `json:"state"`
	// Migration is the ID of the migration that holds this VM, if any.
	Migration string `json:"migration,omitempty"`
	// MovedIndex is the Raft index of the entry that last moved the VM to
	// its host (a Finish, or an inventory that won because the recorded
	// host was gone). An inventory a host read before it had applied that
	// entry says nothing about the VM: a source's inventory read before
	// the Finish still lists the VM, a destination's read before the
	// switch-over does not yet.
	MovedIndex uint64 `json:"moved_index,omitempty"`
}

// Alarm kinds.
const (
	// AlarmSplitBrain: one VM (one UUID) runs on two live hosts and no
	// migration holds it. No migration of it is queued or granted while
	// the alarm stands: moving either copy could destroy the other's data.
	AlarmSplitBrain = "split-brain"
	// AlarmMigrationUnsettled: a migration's job ended unwatched and its two
	// hosts' hypervisors disagree: the VM runs on both, or on neither. The
	// migration stays Running (its slots held) until they agree or an
	// operator cancels it; the mesh never guesses.
	AlarmMigrationUnsettled = "migration-unsettled"
)

// Alarm is a condition the mesh cannot resolve alone and an operator
// must see: in `meshctl vms`, metrics and events.
type Alarm struct {
	Kind string `json:"kind"`
	// VMUUID and VM identify the VM (its key and name).
	VMUUID string `json:"vm_uuid"`
	VM     string `json:"vm"`
	// Hosts are the hosts that run the VM, sorted; the VM's record stays
	// on the host the state placed it on.
	Hosts   []string  `json:"hosts"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
	// Index is the Raft index of the entry that raised it.
	Index uint64 `json:"index"`
}

// AlarmKey is the key in State.Alarms of the alarm of kind about the VM
// whose key is vmKey.
func AlarmKey(kind, vmKey string) string { return kind + "/" + vmKey }

// MigrationState is the phase of a migration in the queue.
type MigrationState string

// Migration states. Queued waits for slots; Running holds them; the rest are final.
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
	Percent        float64 `json:"percent"`
	ElapsedMs      int64   `json:"elapsed_ms"`
	TotalBytes     uint64  `json:"total_bytes"`
	ProcessedBytes uint64  `json:"processed_bytes"`
	RemainingBytes uint64  `json:"remaining_bytes"`
	MiBps          float64 `json:"mib_per_s"`
	DirtyRateBps   uint64  `json:"dirty_rate_bps"`
	Iteration      int     `json:"iteration"`
	PostCopy       bool    `json:"postcopy,omitempty"`
	MaxDowntimeMs  int64   `json:"max_downtime_ms,omitempty"`
	// ThrottlePercent is how much auto-converge slows the guest's vCPUs
	// now: the price the guest pays for a converging pre-copy.
	ThrottlePercent int `json:"throttle_percent,omitempty"`
	// PostCopyAtMs is the job's elapsed time when the policy switched to
	// post-copy: from then on the guest runs on the destination.
	PostCopyAtMs int64 `json:"postcopy_at_ms,omitempty"`
	// SuspendedAtMs is the job's elapsed time when the policy paused the
	// guest (suspend-workload): from then on the guest stands still until
	// it runs on the destination, and the pause counts as downtime.
	SuspendedAtMs int64 `json:"suspended_at_ms,omitempty"`
	// FirstByteMs is the job's elapsed time when its first bytes moved:
	// its setup (the destination's QEMU starting). FirstPassBytes is what
	// its first memory pass sent (pages never touched or zero cost almost
	// nothing). The next prediction of the VM starts from both (see
	// migrate.History): the hypervisor's own figure of the memory in use
	// before a migration is only an upper bound.
	FirstByteMs    int64  `json:"first_byte_ms,omitempty"`
	FirstPassBytes uint64 `json:"first_pass_bytes,omitempty"`
	// DirtySetBytes is what the guest had dirtied when the second pass
	// began (the job's remaining data then): its writes over the first
	// pass, bounded by its working set; what later passes and a post-copy
	// pull send.
	DirtySetBytes uint64 `json:"dirty_set_bytes,omitempty"`
	// FallBps is how fast RemainingBytes fell over the current memory
	// pass so far: bytes per second of the job's elapsed time, from the
	// pass's first sample to this one (0: not known yet). It outruns the
	// wire rate (MiBps) by the pages the pass found zero: QEMU counts
	// them in the remaining data but sends each as a few bytes, so
	// remaining ÷ wire rate says a pass of a guest with untouched memory
	// ends later than it does (see TransferLeftMs).
	FallBps uint64 `json:"fall_bps,omitempty"`
	// LastFirstPassBytes is what the VM's last migration's first pass
	// sent (its FirstPassBytes; 0: none known), carried so that every
	// replica predicts this first pass's end from where the guest's data
	// lay last time (see TransferLeftMs).
	LastFirstPassBytes uint64 `json:"last_first_pass_bytes,omitempty"`
	// Prediction is what the source predicted before it started the job
	// (the auto policy): it stays in the migration's record next to the
	// outcome, so that predictions can be judged against results.
	Prediction *Prediction `json:"prediction,omitempty"`
	// Actions the convergence policy took so far, e.g. "downtime 150ms".
	Actions []string `json:"actions,omitempty"`
	// At is when the source took the sample (its clock): every report
	// differs from the one before, so the leader tells a source that
	// reports from one that went silent.
	At time.Time `json:"at,omitzero"`
}

// Prediction is a migration's predicted course, made on the source before
// the job starts from the guest's dirty rate sampled there and the
// bandwidth granted (migrate.Predict).
type Prediction struct {
	// DirtyRateBps is the sampled dirty rate; Sampled false: unknown.
	DirtyRateBps uint64 `json:"dirty_rate_bps"`
	Sampled      bool   `json:"sampled,omitempty"`
	MemBytes     uint64 `json:"mem_bytes"`
	// DataBytes is what the first pass is expected to send (memory in
	// use; the hypervisor sends untouched pages almost free).
	DataBytes    uint64 `json:"data_bytes"`
	BandwidthBps uint64 `json:"bandwidth_bps"`
	// Converges: pre-copy alone reaches the allowed downtime.
	Converges bool  `json:"converges"`
	Passes    int   `json:"passes,omitempty"`
	TotalMs   int64 `json:"total_ms"`
	// Choice is the mode the auto policy picked: pre-copy, auto-converge
	// or post-copy.
	Choice string `json:"choice,omitempty"`
	// DirtySetBytes bounds the later passes and the post-copy pull (the
	// VM's last migration's dirty set); 0: the memory in use does.
	DirtySetBytes uint64 `json:"dirty_set_bytes,omitempty"`
	// SetupMs is the setup before the first byte counted in TotalMs (the
	// VM's last migration's; 0: unknown, not counted).
	SetupMs int64 `json:"setup_ms,omitempty"`
	// DataFrom says where DataBytes comes from: "last migration" (its
	// first pass), "hypervisor" (the memory it holds for the guest) or
	// "memory" (the guest's whole memory: nothing better known).
	DataFrom string `json:"data_from,omitempty"`
}

// Migration is one request to move one VM, from queue to result.
type Migration struct {
	ID string `json:"id"`
	// VM is the VM's name, for display; VMUUID identifies it (empty for
	// a migration queued before the log's version 2: its VM is then the
	// only one of that name, as v1 knew VMs).
	VM      string         `json:"vm"`
	VMUUID  string         `json:"vm_uuid,omitempty"`
	Source  string         `json:"source"`
	Dest    string         `json:"dest,omitempty"`
	Cluster string         `json:"cluster"`
	State   MigrationState `json:"state"`
	Policy  string         `json:"policy"`
	// BandwidthMiB is the cap asked for; 0 means the cluster default.
	BandwidthMiB uint64 `json:"bandwidth_mib,omitempty"`
	// Parallel is the number of connections the transfer opens (QEMU
	// multifd); 0 takes the cluster's default.
	Parallel int `json:"parallel,omitempty"`
	// GrantedMiB is the cap in force: set at grant, re-shared while running
	// in an auto-bandwidth cluster.
	GrantedMiB uint64 `json:"granted_mib,omitempty"`
	// Pinned is true when the user named the destination (--to).
	Pinned bool `json:"pinned,omitempty"`
	// Drain names the host whose drain queued this migration.
	Drain string `json:"drain,omitempty"`
	// Attempt counts placements; a failed migration may be retried once elsewhere.
	Attempt int `json:"attempt"`
	// Tried lists destinations that failed, so a retry picks another.
	Tried []string `json:"tried,omitempty"`
	// PlacementReason explains why the destination was chosen.
	PlacementReason string `json:"placement_reason,omitempty"`
	// RequestedBy is who asked for it (Enqueue's or the drain's actor).
	RequestedBy string `json:"requested_by,omitempty"`

	CancelRequested bool      `json:"cancel_requested,omitempty"`
	Progress        Progress  `json:"progress"`
	Reason          string    `json:"reason,omitempty"`
	DowntimeMs      int64     `json:"downtime_ms,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	StartedAt       time.Time `json:"started_at,omitempty"`
	EndedAt         time.Time `json:"ended_at,omitempty"`
	// Unsettled says why a Running migration's outcome is not known yet
	// (its job ended unwatched and the hypervisors disagree, or cannot be
	// read) or what it waits for (a broken post-copy waiting to resume).
	// Empty while its source watches the job. Finish clears it.
	Unsettled string `json:"unsettled,omitempty"`
}

// Bandwidth modes of a cluster.
const (
	// BandwidthFixed gives every migration the cluster's BandwidthMiB.
	BandwidthFixed = "fixed"
	// BandwidthAuto divides MigrationNetMiB by the migrations sharing it.
	BandwidthAuto = "auto"
)

// Cluster holds the limits and defaults of one cluster of hosts.
type Cluster struct {
	Name string `json:"name"`
	// MaxOutgoing and MaxIncoming bound migrations per host (oVirt: 2 and 2).
	MaxOutgoing int `json:"max_outgoing"`
	MaxIncoming int `json:"max_incoming"`
	// MaxConcurrent bounds running migrations in the cluster (KubeVirt: 5).
	MaxConcurrent int `json:"max_concurrent"`
	// BandwidthMode is BandwidthFixed or BandwidthAuto.
	BandwidthMode string `json:"bandwidth_mode"`
	// BandwidthMiB is the per-migration cap in fixed mode (oVirt: 52 MiB/s).
	BandwidthMiB uint64 `json:"bandwidth_mib"`
	// MigrationNetMiB is the migration network's capacity, shared in auto mode.
	MigrationNetMiB uint64 `json:"migration_net_mib"`
	// Policy is the default convergence policy.
	Policy string `json:"policy"`
	// RequiredNetworks must exist on every host of the cluster, else NonOperational.
	RequiredNetworks []string `json:"required_networks,omitempty"`
	// CPUBaseline lists CPU flags every host must offer (the cluster's CPU
	// type, as oVirt fixes it per cluster), else the host is NonOperational.
	CPUBaseline []string `json:"cpu_baseline,omitempty"`
	// The computed CPU baseline (cpu.go; set only by SetCPUBaseline):
	// libvirt's baseline CPU definition of the cluster's hosts, its model
	// and full feature list, the hosts it was computed from, whether the
	// leader (auto) or an operator asked for it, and when.
	CPUBaselineXML      string    `json:"cpu_baseline_xml,omitempty"`
	CPUBaselineModel    string    `json:"cpu_baseline_model,omitempty"`
	CPUBaselineFeatures []string  `json:"cpu_baseline_features,omitempty"`
	CPUBaselineHosts    []string  `json:"cpu_baseline_hosts,omitempty"`
	CPUBaselineMode     string    `json:"cpu_baseline_mode,omitempty"`
	CPUBaselineAt       time.Time `json:"cpu_baseline_at,omitzero"`
	// MigrationTransport is TransportTLS (the guest's memory and disks cross
	// the migration network encrypted, as KubeVirt and Nova's native TLS do)
	// or TransportPlain (cleartext: only when an operator chose it). Entries
	// and snapshots written before the field existed carry "", which is kept
	// as it is (so old logs and snapshots replay alike) and means TLS.
	MigrationTransport string `json:"migration_transport,omitempty"`
	// MigrationParallel is the connections per migration when a migration
	// asks for none: 0 is auto, about one per 10 Gb/s of the migration
	// network (as oVirt opens them), at most the VM's vCPUs.
	MigrationParallel int `json:"migration_parallel,omitempty"`
	// OverlapMs lets the next migration's setup overlap the end of the
	// running transfers in an auto-bandwidth cluster (see overlap.go): a
	// migration predicted to end its transfer within OverlapMs no longer
	// holds its slot. 0 is off: each grant waits for a slot to be free.
	OverlapMs int64 `json:"overlap_ms,omitempty"`

	// Automatic balancing (see node/balance.go). Balance is BalanceOff
	// (also "": the default, as oVirt's "none" policy), BalanceMemory or
	// BalanceCPU: the load the leader evens out. The other fields' zero
	// values mean the defaults (BalanceDefaults), so a cluster set before
	// they existed replays alike.
	Balance string `json:"balance,omitempty"`
	// BalanceThreshold is the spread of load, in percentage points between
	// the most and the least loaded Up host, above which the leader moves
	// VMs, and within which it stops.
	BalanceThreshold int `json:"balance_threshold,omitempty"`
	// BalanceHoldSeconds is how long a VM that moved is left where it is:
	// no VM ping-pongs between two hosts.
	BalanceHoldSeconds int64 `json:"balance_hold_seconds,omitempty"`
	// BalanceBudget bounds the balancing migrations queued per hour.
	BalanceBudget int `json:"balance_budget,omitempty"`
}

// Balancing modes of a cluster.
const (
	BalanceOff    = "off"
	BalanceMemory = "memory"
	BalanceCPU    = "cpu"
)

// Balancing defaults: 10 points of spread (oVirt's evenly_distributed
// default high/low utilization gap is of that order), an hour of hold
// (issue 13: no VM moved twice within an hour), 20 moves an hour (a
// fifth of VMware DRS's default rate of one pass of up to 100 moves, as a
// mesh has no shared storage scheduler to pace it).
const (
	DefaultBalanceThreshold   = 10
	DefaultBalanceHoldSeconds = 3600
	DefaultBalanceBudget      = 20
)

// BalanceSettings returns the cluster's balancing mode, threshold, hold
// and budget with the defaults filled in.
func (c Cluster) BalanceSettings() (mode string, threshold int, hold time.Duration, budget int) {
	mode, threshold, holdS, budget := c.Balance, c.BalanceThreshold, c.BalanceHoldSeconds, c.BalanceBudget
	if mode == "" {
		mode = BalanceOff
	}
	if threshold == 0 {
		threshold = DefaultBalanceThreshold
	}
	if holdS == 0 {
		holdS = DefaultBalanceHoldSeconds
	}
	if budget == 0 {
		budget = DefaultBalanceBudget
	}
	return mode, threshold, time.Duration(holdS) * time.Second, budget
}

// Migration transports of a cluster.
const (
	// TransportTLS encrypts the migration streams (libvirt VIR_MIGRATE_TLS).
	TransportTLS = "tls"
	// TransportPlain sends them in cleartext.
	TransportPlain = "plain"
)

// PlainMigrations reports whether the cluster's migrations go in cleartext;
// anything but an explicit TransportPlain means TLS.
func (c Cluster) PlainMigrations() bool { return c.MigrationTransport == TransportPlain }

// DefaultCluster returns a cluster with the project's defaults, chosen from
// oVirt's and KubeVirt's (see README).
func DefaultCluster(name string) Cluster {
	return Cluster{
		Name:            name,
		MaxOutgoing:     2,
		MaxIncoming:     2,
		MaxConcurrent:   5,
		BandwidthMode:   BandwidthFixed,
		BandwidthMiB:    52,
		MigrationNetMiB: 1000,
		Policy:          "minimal-downtime",

		MigrationTransport: TransportTLS,
	}
}

// Drain states.
const (
	DrainActive    = "active"
	DrainDone      = "done"
	DrainStuck     = "stuck" // some VMs could not move; host stays PreparingForMaintenance
	DrainCancelled = "cancelled"
)

// Drain records moving every VM off a host.
type Drain struct {
	Host  string `json:"host"`
	State string `json:"state"`
	// Unmovable maps a VM to why it could not move.
	Unmovable map[string]string `json:"unmovable,omitempty"`
	// Origin maps each VM drained to the host it left, for activate --return.
	Moved  map[string]string `json:"moved,omitempty"`
	Reason string            `json:"reason,omitempty"` // "operator", "leave", "sigterm"
	// RequestedBy is who asked for the drain (StartDrain's actor).
	RequestedBy string    `json:"requested_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	EndedAt     time.Time `json:"ended_at,omitempty"`
	// PredictedSeconds is what the drain's plan (node.PlanDrain) predicted
	// it would take when it started; 0 when no plan was made. A drain that
	// ends done records its error next to it (ErrorPercent: took over
	// predicted, minus one, in percent), so predictions can be judged.
	PredictedSeconds float64 `json:"predicted_seconds,omitempty"`
	ErrorPercent     float64 `json:"error_percent,omitempty"`
}
