package sim

import (
	"errors"

	"github.com/hostmesh/hostmesh/migrate"
)

// Sentinel errors, so callers (and tests of the scheduler's retry logic) can
// branch on why a sim host refused. They cross the HTTP boundary by code.
var (
	// ErrExists: a VM of that name is already defined (or arriving) on the host.
	ErrExists = errors.New("domain already exists")
	// ErrNoMemory: the host has not enough free memory for the VM.
	ErrNoMemory = errors.New("not enough free memory")
	// ErrBusy: the VM already has a migration job, or is being removed.
	ErrBusy = errors.New("another migration job is already running")
	// ErrNotRunning: only running or paused VMs can be live-migrated.
	ErrNotRunning = errors.New("domain is not running")
	// ErrSameHost: source and destination are the same host.
	ErrSameHost = errors.New("attempt to migrate guest to the same host")
	// ErrUnknownHost: the destination URI names no known sim host.
	ErrUnknownHost = errors.New("unknown sim host")
	// ErrAborted: the job was aborted; the VM stays on the source.
	ErrAborted = migrate.ErrAborted
	// ErrPostCopy: post-copy was not allowed, not possible now, or (once
	// running) cannot be aborted.
	ErrPostCopy = errors.New("post-copy not possible")
	// ErrNoJob: the job already ended or is switching over.
	ErrNoJob = errors.New("no active migration job")
	// ErrNoReservation: the destination has no reservation of that id.
	ErrNoReservation = errors.New("no such incoming migration")
	// ErrInterrupted: a post-copy job was broken off (InterruptPostCopy).
	ErrInterrupted = errors.New("post-copy interrupted")
	// ErrLinkDown: a migration link is down; a resume cannot reach the peer.
	ErrLinkDown = errors.New("migration network unreachable")
	// ErrHostDown: the host does not answer its peers (SetDown).
	ErrHostDown = errors.New("host does not answer")
	// ErrConnectionLost: the migration stream broke (BreakMigrations).
	ErrConnectionLost = errors.New("migration connection lost")
)

// errCodes names sentinels on the wire.
var errCodes = map[string]error{
	"exists":         ErrExists,
	"no_memory":      ErrNoMemory,
	"busy":           ErrBusy,
	"not_running":    ErrNotRunning,
	"no_reservation": ErrNoReservation,
}

func codeOf(err error) string {
	for code, sentinel := range errCodes {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return ""
}
