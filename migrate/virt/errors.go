package virt

import (
	"errors"
	"fmt"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

// ErrJobEnded is returned by Job methods that act on a running job (Abort,
// StartPostCopy, SetMaxDowntime) once the job has already ended: the caller
// lost a race with completion, which is not a hypervisor failure.
var ErrJobEnded = errors.New("migration job already ended")

// ErrAborted is migrate.ErrAborted: wrapped into Job.Err when the job
// failed after Abort was called, so callers need not parse libvirt messages.
var ErrAborted = migrate.ErrAborted

// wrap adds what was being done to err and keeps libvirt's error reachable
// (errors.As to libvirt.Error, errors.Is to a libvirt.ErrorNumber). A missing
// domain also matches migrate.ErrNoDomain, which is what the mesh branches on.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if errors.Is(err, libvirt.ERR_NO_DOMAIN) {
		return fmt.Errorf("%s: %w: %w", msg, migrate.ErrNoDomain, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}
