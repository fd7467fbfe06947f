package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerLock is a machine-wide lock held by the process that owns the running
// lab, from Start until Close or until that process exits (the kernel drops
// an flock with its last file descriptor, so a crashed test does not leave
// it held). The lab's names (hm-* namespaces, 10.77-79.0.0/24) are global to
// the machine, so two processes starting labs at once would tear each
// other's down; with this lock the second Start waits instead.
//
// It is deliberately not /tmp/hostmesh-lab.lock: callers may already run
// under `flock /tmp/hostmesh-lab.lock`, and a second flock on that file from
// inside would wait forever.
const ownerLock = "/run/hostmesh-lab.owner.lock"

// ErrBusy is returned when another process owned the lab until ctx ended.
var ErrBusy = errors.New("another process owns the lab")

// acquireOwner takes ownerLock, waiting until ctx ends.
func acquireOwner(ctx context.Context) (*os.File, error) {
	f, err := os.OpenFile(ownerLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab lock %s: %w", ownerLock, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lab lock %s: %w", ownerLock, err)
		}
		select {
		case <-ctx.Done():
			owner, _ := os.ReadFile(ownerLock)
			f.Close()
			return nil, fmt.Errorf("lab lock %s: %w (pid %s): %w", ownerLock, ErrBusy, strings.TrimSpace(string(owner)), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Record the owner for the error message of whoever waits next.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
