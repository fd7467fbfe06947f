package virt

import (
	"context"

	"github.com/hostmesh/hostmesh/fsm"
)

// PrepareDestDisks makes *Hypervisor a node.DestDiskPreparer, so meshd's
// executor pre-creates local disk images on the destination before a live
// disk copy (libvirt refuses NON_SHARED_DISK without them).
func (h *Hypervisor) PrepareDestDisks(ctx context.Context, destURI string, disks []fsm.Disk) error {
	return PrepareDestDisks(ctx, destURI, disks)
}
