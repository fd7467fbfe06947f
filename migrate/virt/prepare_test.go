package virt

import (
	"context"
	"errors"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// The test driver keeps storage in memory: its "default-pool" has target
// /default-pool, so images created there can be looked up afterwards.
func TestPrepareDestDisksInExistingPool(t *testing.T) {
	h := openTest(t) // keeps the shared test-driver state alive across calls
	ctx := context.Background()
	disk := fsm.Disk{Target: "vdb", Source: "/default-pool/guest-local.qcow2", Format: "qcow2", SizeBytes: 1 << 30}

	if err := PrepareDestDisks(ctx, testURI, []fsm.Disk{disk}); err != nil {
		t.Fatal(err)
	}
	vol, err := h.conn.LookupStorageVolByPath(disk.Source)
	if err != nil {
		t.Fatalf("image not created: %v", err)
	}
	defer vol.Free()
	if err := checkVolume(vol, disk.SizeBytes, "qcow2"); err != nil {
		t.Fatalf("created image: %v", err)
	}

	// Preparing again (a retried migration) keeps the matching image.
	if err := PrepareDestDisks(ctx, testURI, []fsm.Disk{disk}); err != nil {
		t.Fatalf("second prepare: %v", err)
	}
	// A different size at the same path must not be silently accepted.
	bigger := disk
	bigger.SizeBytes = 2 << 30
	if err := PrepareDestDisks(ctx, testURI, []fsm.Disk{bigger}); !errors.Is(err, ErrDiskMismatch) {
		t.Fatalf("prepare over a smaller image: err %v, want ErrDiskMismatch", err)
	}
}

func TestPrepareDestDisksTransientPool(t *testing.T) {
	h := openTest(t)
	disk := fsm.Disk{Target: "vda", Source: "/elsewhere/guest.img", SizeBytes: 64 << 20}
	if err := PrepareDestDisks(context.Background(), testURI, []fsm.Disk{disk}); err != nil {
		t.Fatal(err)
	}
	// The pool made for the call is gone again: no stray pools on the host.
	p, err := activePoolAt(h.conn, "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		p.Free()
		t.Fatal("transient pool for /elsewhere left active")
	}
}

func TestPrepareDestDisksRejectsIncompleteDisks(t *testing.T) {
	openTest(t)
	for _, d := range []fsm.Disk{
		{Target: "vda", Source: "relative.img", SizeBytes: 1 << 20},
		{Target: "vda", Source: "/default-pool/nosize.img"},
	} {
		if err := PrepareDestDisks(context.Background(), testURI, []fsm.Disk{d}); err == nil {
			t.Errorf("prepared %+v without error", d)
		}
	}
}
