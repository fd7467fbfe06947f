// Package migrate is the boundary between the mesh and a hypervisor, and the
// logic that moves one VM: prerequisite checks, placement, and the convergence
// policies that watch a running job. The hypervisor hides behind Hypervisor, an
// interface of just the calls the mesh uses (as KubeVirt's migration monitor
// does), so the same code drives real libvirt and the simulated hypervisor.
package migrate

import (
	"context"
	"errors"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// ErrNoDomain is returned when the named domain does not exist on the host.
var ErrNoDomain = errors.New("no such domain")

// ErrAborted is wrapped into Job.Err when the job failed after Abort, so
// callers tell "we cancelled it" from "it broke" whatever the hypervisor.
var ErrAborted = errors.New("migration aborted")

// Capabilities describes a host as its hypervisor sees it. Networks and storage
// domains come from configuration, not from the hypervisor, and are added by the
// caller.
type Capabilities struct {
	Arch     string
	CPUModel string
	CPUFlags []string
	// CPUModels are the guest CPU models this host can run (libvirt's
	// domain capabilities, models marked usable). Empty when unknown.
	CPUModels   []string
	MemTotalMiB uint64
	MemFreeMiB  uint64
	// MemReservedMiB is memory held for incoming migrations, not counted
	// in MemFreeMiB. The sim reports its reservations; libvirt reports 0
	// (its destination QEMU takes memory as pages arrive), which only
	// makes the memory check stricter while a migration comes in.
	MemReservedMiB uint64
	CPUs           int
}

// Domain is one guest with the facts the prerequisite checks need, read from
// its domain XML.
type Domain struct {
	Name      string
	UUID      string
	State     string // fsm.VMRunning, fsm.VMPaused, fsm.VMShutoff
	MemoryMiB uint64
	VCPUs     int
	CPUModel  string
	CPUFlags  []string
	// CPUXML is the domain XML's <cpu> element ("" when it has none).
	CPUXML string
	NICs   []fsm.NIC  // Network is the libvirt network or bridge name
	Disks  []fsm.Disk // StorageDomain left empty: the caller maps paths to domains
	// HostDevices names the host devices passed through (fsm.VM.HostDevices).
	HostDevices []string
}

// Params are the settings of one live migration.
type Params struct {
	// DestURI is the destination hypervisor's control URI
	// (libvirt: qemu+tcp://MGMT-IP/system; sim: a sim address).
	DestURI string
	// DestHost is the destination's host name in the mesh: a hypervisor
	// that reaches the destination over TLS verifies it is that host (the
	// sim's HTTPS peer checks its host certificate).
	DestHost string
	// MigrateURI puts the memory and disk streams on the migration network
	// (libvirt: tcp://MIGRATION-IP). Empty lets the hypervisor choose.
	MigrateURI string
	// BandwidthMiB caps the stream in MiB/s; 0 is unlimited.
	BandwidthMiB uint64
	// MaxDowntime is the initial allowed downtime (pause at switch-over).
	MaxDowntime time.Duration
	// AutoConverge lets the hypervisor throttle the guest's vCPUs.
	AutoConverge bool
	// AllowPostCopy lets the job later switch to post-copy (StartPostCopy).
	AllowPostCopy bool
	// Parallel > 1 opens that many connections for the memory stream
	// (libvirt: VIR_MIGRATE_PARALLEL, QEMU multifd): one TCP (or TLS)
	// stream per connection, each with its own thread on both ends, so
	// that links faster than one stream fills are filled. 0 or 1: one.
	Parallel int
	// CopyStorage copies the listed local disks live (non-shared storage).
	CopyStorage []string
	// Unsafe skips the hypervisor's own storage and cache safety checks; the
	// mesh sets it only after running those checks itself (see checks.go).
	Unsafe bool
	// TLS encrypts the memory stream and the live copy of local disks
	// (libvirt: VIR_MIGRATE_TLS, with QEMU's certificates in /etc/pki/qemu).
	// The executor sets it from the cluster's migration transport.
	TLS bool
	// ID names the migration and its attempt ("m12#1") in logs; the sim
	// counts the starts of each, so a test can assert that no migration was
	// ever started twice on a hypervisor.
	ID string
}

// JobStats is one sample of a running (or completed) migration job, in the
// shape of libvirt's virDomainGetJobStats.
type JobStats struct {
	Elapsed              time.Duration
	DataTotal            uint64
	DataProcessed        uint64
	DataRemaining        uint64
	MemTotal             uint64
	MemProcessed         uint64
	MemRemaining         uint64
	MemBps               uint64 // transfer rate, bytes/s
	MemDirtyRate         uint64 // pages dirtied, bytes/s
	MemIteration         int
	DiskTotal            uint64
	DiskProcessed        uint64
	DiskRemaining        uint64
	Downtime             time.Duration // final, once completed
	PostCopy             bool
	MaxDowntime          time.Duration
	AutoConvergeThrottle int // percent, 0 when not throttling
	// Resumed is when the job resumed on the destination a guest that
	// Job.Suspend paused and the hypervisor left paused there (zero: it
	// was running at the switch-over): the pause lasted until then.
	Resumed time.Time
}

// Job is a migration in progress on the source host.
type Job interface {
	// Stats samples the job. Safe to call concurrently with the others.
	Stats() (JobStats, error)
	// Done is closed when the job ends; Err then tells how.
	Done() <-chan struct{}
	// Err is nil after success, the hypervisor's error otherwise; after
	// Abort it wraps ErrAborted.
	Err() error
	// Result is the completed job's final stats (downtime, totals).
	Result() JobStats
	// Abort cancels the job; the guest keeps running on the source.
	Abort() error
	// StartPostCopy switches a job started with AllowPostCopy to post-copy.
	StartPostCopy() error
	// SetMaxDowntime raises or lowers the allowed switch-over pause.
	SetMaxDowntime(d time.Duration) error
	// SetBandwidth changes the running job's cap, in MiB/s (> 0): an
	// auto-bandwidth cluster reshares its network as migrations come and go.
	SetBandwidth(mib uint64) error
	// Suspend pauses the guest on the source while the job runs (libvirt:
	// virDomainSuspend), so that its memory stops changing and pre-copy
	// completes; after the switch-over the guest runs on the destination
	// (the job resumes it there if the hypervisor left it paused). A job
	// that fails or is aborted after Suspend resumes the guest on the
	// source before it ends, so a failure never leaves a guest paused.
	Suspend() error
	// InterruptPostCopy breaks off a post-copy job whose stream stalled
	// (libvirt: virDomainAbortJobFlags with VIR_DOMAIN_ABORT_JOB_POSTCOPY):
	// both copies pause in "post-copy failed", from where
	// Hypervisor.ResumePostCopy goes on once the network is back. A stalled
	// stream never fails by itself (TCP waits), so the monitor decides.
	InterruptPostCopy() error
}

// Hypervisor is what the mesh needs from the hypervisor of one host.
//
// A migration job belongs to the hypervisor, not to the meshd that started
// it: libvirt's peer-to-peer job runs on when meshd dies. So besides
// starting jobs, a Hypervisor reports what a domain and its job are doing
// (Status), hands a restarted meshd a Job for a job an earlier process
// started (Attach), resumes a broken post-copy (ResumePostCopy), and reads
// a peer host's hypervisor (Peer) so that a migration whose job ended
// unwatched can be settled from both sides.
type Hypervisor interface {
	// Capabilities reports CPU, memory and CPU count of the host.
	Capabilities(ctx context.Context) (Capabilities, error)
	// Domains lists the guests defined or running on the host.
	Domains(ctx context.Context) ([]Domain, error)
	// Migrate starts a live migration of the named domain and returns at once.
	Migrate(ctx context.Context, name string, p Params) (Job, error)
	// Status reports a domain of this host and its job, running or ended.
	// Close releases the connection.
	StatusReader
	// Resume resumes a guest of this host that a migration left paused.
	Resumer
	// Attach returns a Job for the migration job this host's hypervisor
	// runs for the domain, started by an earlier process: its stats, abort,
	// downtime, post-copy and bandwidth controls, and its end. p are the
	// migration's settings (DestURI reads the completed job's stats on the
	// destination). ErrNoJob when no migration job runs.
	Attach(ctx context.Context, ref DomainRef, p Params) (Job, error)
	// ResumePostCopy resumes a post-copy migration whose stream broke
	// (libvirt: VIR_MIGRATE_POSTCOPY_RESUME) with the settings it started
	// with, and returns at once with the resumed job. It fails while the
	// migration network is still down: at once, or (libvirt, whose resume
	// call runs in the job's goroutine) as the returned job's quick end, so
	// a caller knows the resume took only once the job is seen to run.
	ResumePostCopy(ctx context.Context, ref DomainRef, p Params) (Job, error)
	// Peer opens another host's hypervisor at uri (a peer's HypervisorURI)
	// to read its domains and abort a job there; host is its name in the
	// mesh (a driver that talks to peers over TLS verifies it).
	Peer(ctx context.Context, host, uri string) (Remote, error)
}

// DirtyRate is a guest's memory activity sampled before a migration.
type DirtyRate struct {
	// Bps is the rate at which the guest dirties memory, bytes/s.
	Bps uint64
	// InUseBytes is the guest memory the hypervisor holds (touched pages):
	// what a first pre-copy pass sends; untouched pages cost almost
	// nothing. 0: unknown.
	InUseBytes uint64
}

// DirtyRateSampler is implemented by hypervisors that can measure a
// guest's dirty rate without migrating it (libvirt:
// virDomainStartDirtyRateCalc), which the auto policy's prediction needs.
type DirtyRateSampler interface {
	SampleDirtyRate(ctx context.Context, ref DomainRef, period time.Duration) (DirtyRate, error)
}
