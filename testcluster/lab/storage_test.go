package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLocalDiskMigration moves a guest whose disk is on h1's local storage:
// the destination image is pre-created at the same path on h2, libvirt copies
// the disk live (--copy-storage-all), and a marker written before the
// migration is read back by the guest from h2's copy afterwards.
func TestLocalDiskMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLab(t, ctx, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]

	spec := GuestSpec{Name: "local1", MemoryMiB: 256, IP: VMPrefix + "51", Disk: DiskLocal, DiskSizeMiB: 32}
	g, err := l.DefineGuest(ctx, h1, spec)
	if err != nil {
		t.Fatalf("define guest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logConsole(t, g)
			logQemu(t, l, g)
		}
	})
	if g.DiskPath != filepath.Join(h1.LocalDir, "local1.qcow2") {
		t.Fatalf("disk path %q, want it under the hosts' local dir %s", g.DiskPath, h1.LocalDir)
	}
	// Local means local: the image is in h1's backing dir only.
	if _, err := os.Stat(filepath.Join(h1.LocalBacking, "local1.qcow2")); err != nil {
		t.Fatalf("image not on h1's local storage: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h2.LocalBacking, "local1.qcow2")); !os.IsNotExist(err) {
		t.Fatalf("image visible on h2's local storage before the migration: %v", err)
	}

	waitHTTP(t, ctx, g)
	marker := fmt.Sprintf("local-disk-marker-%d", time.Now().UnixNano())
	if err := g.WriteDisk(ctx, marker); err != nil {
		t.Fatalf("write disk marker: %v", err)
	}
	if err := g.CreateDiskOn(ctx, h2); err != nil {
		t.Fatal(err)
	}
	before, _ := g.LastCounter()
	start := time.Now()
	if out, err := h1.Virsh(ctx, "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
		"--copy-storage-all", g.Spec.Name, h2.LibvirtURI, "tcp://"+h2.MigIP); err != nil {
		t.Fatalf("virsh migrate --copy-storage-all: %v (%s)", err, out)
	}
	t.Logf("migration with local disk took %s", time.Since(start).Round(time.Millisecond))

	if names := domains(t, ctx, h2, "--state-running"); len(names) != 1 || names[0] != g.Spec.Name {
		t.Errorf("h2 running domains = %v, want [%s]", names, g.Spec.Name)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := g.WaitCounter(wctx, before+2); err != nil {
		t.Fatalf("counter after migration: %v", err)
	}
	counters, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, counters)
	checkNoOops(t, g)
	got, err := g.ReadDisk(ctx)
	if err != nil || got != marker {
		t.Errorf("disk marker read on h2 = %q, %v; want %q", got, err, marker)
	}
}
