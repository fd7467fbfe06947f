package migrate

import (
	"context"
	"errors"

	"github.com/hostmesh/hostmesh/fsm"
)

// ErrNoJob is returned by Attach when the hypervisor runs no migration job
// for the domain: there is nothing to re-attach to.
var ErrNoJob = errors.New("no migration job")

// DomainRef names a domain on a host: by UUID when known (a name can be
// reused on another host, a UUID not), else by name.
type DomainRef struct {
	Name string
	UUID string
}

func (r DomainRef) String() string {
	if r.UUID != "" && r.Name != "" {
		return r.Name + " (" + r.UUID + ")"
	}
	if r.UUID != "" {
		return r.UUID
	}
	return r.Name
}

// JobKind says what a domain's job is doing.
type JobKind string

// Job kinds. The hypervisor runs at most one job per domain.
const (
	JobMigrationOut JobKind = "migration-out" // this host is the source
	JobMigrationIn  JobKind = "migration-in"  // this host is the destination
	JobOther        JobKind = "other"         // a save, a dump, a block job…
)

// JobOutcome is how an ended job ended.
type JobOutcome string

// Outcomes of an ended job, as libvirt's completed-job stats report them.
const (
	JobCompleted JobOutcome = "completed"
	JobFailed    JobOutcome = "failed"
	JobCancelled JobOutcome = "cancelled"
)

// RunningJob is a domain's job in progress.
type RunningJob struct {
	Kind  JobKind
	Stats JobStats // zero on a destination (libvirt samples only the source)
}

// EndedJob is the last job the hypervisor kept the result of
// (libvirt: virDomainGetJobStats with VIR_DOMAIN_JOB_STATS_COMPLETED).
type EndedJob struct {
	Kind    JobKind
	Outcome JobOutcome
	Stats   JobStats
	// Error is the hypervisor's message for a failed job, when it kept one.
	Error string
}

// Domain state reasons that matter to a migration (libvirt's
// virDomainRunningReason and virDomainPausedReason, named as virsh names
// them). Other reasons are passed on as the hypervisor words them.
const (
	ReasonMigrating      = "migrating"        // destination: an incoming pre-copy migration
	ReasonMigrated       = "migrated"         // destination: the guest arrived
	ReasonPostCopy       = "post-copy"        // running here (destination) or paused here (source) in post-copy
	ReasonPostCopyFailed = "post-copy failed" // the post-copy stream broke: resumable, or lost
	// ReasonUser: paused by virDomainSuspend, as a policy's Job.Suspend
	// (suspend-workload) pauses the guest on the source, or an operator.
	ReasonUser = "user"
)

// DomainStatus is one domain as one host's hypervisor sees it now.
type DomainStatus struct {
	Name string
	UUID string
	// Exists says the host has the domain, running or only defined. When
	// false the other fields are zero.
	Exists bool
	// State is fsm.VMRunning, VMPaused or VMShutoff.
	State string
	// Reason is why the domain is in State (one of the Reason… constants
	// above, or the hypervisor's own word).
	Reason string
	// Incoming: the domain is the destination's copy of an incoming
	// pre-copy migration, paused until the switch-over; the guest runs
	// elsewhere.
	Incoming bool
	// PostCopy: the domain is in a post-copy migration: on the source it is
	// paused and serves the pages the destination still lacks; on the
	// destination the guest runs.
	PostCopy bool
	// PostCopyFailed: the post-copy stream broke. The guest's memory is
	// split between the two hosts: it can resume (VIR_MIGRATE_POSTCOPY_RESUME)
	// while both copies exist, and is lost when one of them is gone.
	PostCopyFailed bool
	// Job is the job the domain has now, nil when none.
	Job *RunningJob
	// Ended is the last ended job the hypervisor kept, nil when none.
	Ended *EndedJob
}

// Runs reports whether the guest itself runs in this copy: a running or
// paused domain that is neither an incoming copy nor the source side of a
// post-copy migration (which only serves pages).
func (s DomainStatus) Runs() bool {
	if !s.Exists || s.Incoming {
		return false
	}
	if s.PostCopy || s.PostCopyFailed {
		return s.State == fsm.VMRunning // the destination side
	}
	return s.State == fsm.VMRunning || s.State == fsm.VMPaused
}

// Migrating reports whether the domain has a migration job running.
func (s DomainStatus) Migrating() bool {
	return s.Job != nil && (s.Job.Kind == JobMigrationOut || s.Job.Kind == JobMigrationIn)
}

// StatusReader answers what a hypervisor knows about one domain. A host
// reads its own hypervisor through Hypervisor, and a peer's through
// Hypervisor.Peer.
type StatusReader interface {
	// Status reports the domain and its job. A domain the host does not
	// have is no error: the status says Exists false.
	Status(ctx context.Context, ref DomainRef) (DomainStatus, error)
	// Close releases the connection.
	Close() error
}

// Remote is another host's hypervisor as a peer reaches it: it reads a
// domain, aborts the domain's migration job and resumes a guest a
// migration left paused, so that the leader can cancel and settle a
// migration whose source meshd is down.
type Remote interface {
	StatusReader
	Resumer
	// AbortJob aborts the domain's migration job; the guest stays on its
	// source. A job in post-copy cannot be aborted.
	AbortJob(ctx context.Context, ref DomainRef) error
}

// Resumer resumes a paused guest (libvirt: virDomainResume). A migration
// pauses its guest on the source (a policy's Job.Suspend, the switch-over)
// and the process that watches the job resumes it when the job fails; when
// that process died, whoever settles the migration must (node/settle.go).
type Resumer interface {
	// Resume resumes the domain if it is paused; a domain that runs is
	// left alone. It never resumes one side of a post-copy migration.
	Resume(ctx context.Context, ref DomainRef) error
}
