package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/cli"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// moved is what the closing line of a successful meshctl migrate --wait says.
type moved struct {
	id, vm, from, to string
	total, downtime  time.Duration
	run              ctlResult
}

// migrateWait runs meshctl migrate VM --wait with extra flags and requires
// exit 0 and a closing line with total time and downtime.
func (m *mesh) migrateWait(t *testing.T, ctx context.Context, vm string, flags ...string) moved {
	t.Helper()
	r := m.ctl(ctx, append([]string{"migrate", vm, "--wait"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("migration of %s failed: %s", vm, r)
	}
	cm, err := cli.ParseMoved(r.stdout)
	if err != nil {
		t.Fatalf("%v: %s", err, r)
	}
	mv := moved{id: cm.ID, vm: cm.VM, from: cm.From, to: cm.To, total: cm.Total, downtime: cm.Downtime, run: r}
	if mv.vm != vm || mv.total <= 0 {
		t.Fatalf("closing line %q: want vm %s and a total time", cm.Line, vm)
	}
	t.Logf("meshctl: %s (command took %s)", cm.Line, r.took.Round(time.Millisecond))
	return mv
}

// TestMigrateWaitKeepsGuestRunning is the basic promise: meshctl migrate
// --wait moves a running guest with a shared disk to the host placement
// picks, says how long it took and how long the guest paused, and the guest
// ran on throughout and now runs on the destination only.
func TestMigrateWaitKeepsGuestRunning(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1 := m.lab.Hosts[0]
	g := m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "basic", MemoryMiB: 256, FillMiB: 128, Disk: lab.DiskShared})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)

	start := time.Now()
	mv := m.migrateWait(t, ctx, "basic")
	if mv.from != h1.Name || mv.to == h1.Name {
		t.Fatalf("closing line: moved %s → %s, want from %s to another host", mv.from, mv.to, h1.Name)
	}
	if mv.to != "h2" {
		t.Errorf("placement chose %s; h2 is the only other host of cluster c1", mv.to)
	}
	w.assertContinuous(t, start, mv.downtime)

	m.waitVM(t, ctx, "basic", mv.to)
	m.assertRunsOnlyOn(t, ctx, "basic", mv.to)
}

// TestMigrateKeepsTCPConnection: a TCP connection to the guest opened before
// the migration still carries data after it, and the guest answers HTTP.
func TestMigrateKeepsTCPConnection(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := m.bootGuest(t, ctx, m.lab.Hosts[0], lab.GuestSpec{Name: "tcp", MemoryMiB: 256})
	waitHTTP(t, ctx, g, 30*time.Second)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", g.Spec.IP+":7")
	if err != nil {
		t.Fatalf("dial echo port of guest %s: %v", g.Spec.Name, err)
	}
	defer conn.Close()
	echo(t, conn, "before-migration")

	m.migrateWait(t, ctx, "tcp", "--to", "h2")
	echo(t, conn, "after-migration")
	body := waitHTTP(t, ctx, g, 10*time.Second)
	if !strings.Contains(body, "host=tcp") {
		t.Errorf("HTTP after migration: %q, want host=tcp", body)
	}
	t.Logf("guest HTTP after migration: %s", strings.TrimSpace(body))
}

// echo sends one line over the guest's echo connection and wants it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		t.Fatalf("echo %q: write: %v", msg, err)
	}
	buf := make([]byte, len(msg)+1)
	for n := 0; n < len(buf); {
		k, err := c.Read(buf[n:])
		if err != nil {
			t.Fatalf("echo %q: read after %q: %v", msg, buf[:n], err)
		}
		n += k
	}
	if string(buf) != msg+"\n" {
		t.Fatalf("echo %q: got %q", msg, buf)
	}
}

// TestMigrateSharedDiskKeepsData: a disk on the shared storage domain is not
// copied (the mesh sees it in domain "shared"); data the guest wrote before
// the migration is read back from it after.
func TestMigrateSharedDiskKeepsData(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := m.bootGuest(t, ctx, m.lab.Hosts[0], lab.GuestSpec{Name: "shdisk", MemoryMiB: 256, Disk: lab.DiskShared})
	vm := m.vmEntries(t, ctx, "shdisk")[0]
	if len(vm.Disks) != 1 || vm.Disks[0].StorageDomain != "shared" {
		t.Fatalf("meshctl vms: disks %+v, want one disk in storage domain shared", vm.Disks)
	}
	waitHTTP(t, ctx, g, 30*time.Second)
	marker := fmt.Sprintf("shared-%d", time.Now().UnixNano())
	if err := g.WriteDisk(ctx, marker); err != nil {
		t.Fatalf("write marker: %v", err)
	}
	m.migrateWait(t, ctx, "shdisk", "--to", "h2")
	waitHTTP(t, ctx, g, 10*time.Second)
	got, err := g.ReadDisk(ctx)
	if err != nil || got != marker {
		t.Fatalf("disk after migration: %q, %v; want %q", got, err, marker)
	}
}

// TestMigrateLocalDiskCopiedLive: a disk outside every storage domain is
// local; meshd pre-creates the image on the destination (nothing else does)
// and copies it live, and the data written before is read back after.
func TestMigrateLocalDiskCopiedLive(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1, h2 := m.lab.Hosts[0], m.lab.Hosts[1]
	g := m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "lcdisk", MemoryMiB: 256, Disk: lab.DiskLocal})
	vm := m.vmEntries(t, ctx, "lcdisk")[0]
	if len(vm.Disks) != 1 || vm.Disks[0].StorageDomain != "" {
		t.Fatalf("meshctl vms: disks %+v, want one local disk (no storage domain)", vm.Disks)
	}
	destImage := filepath.Join(h2.LocalBacking, filepath.Base(g.DiskPath))
	if _, err := os.Stat(destImage); !os.IsNotExist(err) {
		t.Fatalf("destination image %s exists before the migration (%v): the test must leave its creation to meshd", destImage, err)
	}
	waitHTTP(t, ctx, g, 30*time.Second)
	marker := fmt.Sprintf("local-%d", time.Now().UnixNano())
	if err := g.WriteDisk(ctx, marker); err != nil {
		t.Fatalf("write marker: %v", err)
	}
	w := watchCounters(t, g)
	start := time.Now()
	mv := m.migrateWait(t, ctx, "lcdisk", "--to", "h2")
	w.assertContinuous(t, start, mv.downtime)
	if _, err := os.Stat(destImage); err != nil {
		t.Errorf("destination image: %v", err)
	}
	waitHTTP(t, ctx, g, 10*time.Second)
	got, err := g.ReadDisk(ctx)
	if err != nil || got != marker {
		t.Fatalf("disk after migration: %q, %v; want %q", got, err, marker)
	}
	m.assertRunsOnlyOn(t, ctx, "lcdisk", "h2")
}

// TestMigrationStreamOnMigrationNetwork: the memory stream leaves the source
// on its migration interface; the management interface carries only
// control traffic (gossip, Raft, API, libvirt RPC).
func TestMigrationStreamOnMigrationNetwork(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1 := m.lab.Hosts[0]
	// QEMU sends zero pages as a few bytes: fill most of the memory and keep
	// dirtying it, so the stream carries more than the guest's size.
	spec := lab.GuestSpec{Name: "stream", MemoryMiB: 256, FillMiB: 180, DirtyMiBps: 48}
	m.bootGuest(t, ctx, h1, spec)

	_, mig0, err := h1.IfaceBytes(lab.MigIface)
	if err != nil {
		t.Fatal(err)
	}
	_, mgmt0, err := h1.IfaceBytes(lab.MgmtIface)
	if err != nil {
		t.Fatal(err)
	}
	mv := m.migrateWait(t, ctx, "stream", "--to", "h2", "--bandwidth", "1000")
	_, mig1, err := h1.IfaceBytes(lab.MigIface)
	if err != nil {
		t.Fatal(err)
	}
	_, mgmt1, err := h1.IfaceBytes(lab.MgmtIface)
	if err != nil {
		t.Fatal(err)
	}
	mem := uint64(spec.MemoryMiB) << 20
	migTx, mgmtTx := mig1-mig0, mgmt1-mgmt0
	mg := m.migration(t, ctx, mv.id)
	t.Logf("h1 sent %.1f MiB on %s and %.1f MiB on %s during the migration (QEMU reports %.1f MiB processed; guest %d MiB, %d MiB filled)",
		mib(migTx), lab.MigIface, mib(mgmtTx), lab.MgmtIface, mib(mg.Progress.ProcessedBytes), spec.MemoryMiB, spec.FillMiB)
	if migTx < mem {
		t.Errorf("h1 %s sent %.1f MiB, want at least the guest's %d MiB", lab.MigIface, mib(migTx), spec.MemoryMiB)
	}
	if migTx < mg.Progress.ProcessedBytes {
		t.Errorf("h1 %s sent %.1f MiB, less than the %.1f MiB QEMU streamed", lab.MigIface, mib(migTx), mib(mg.Progress.ProcessedBytes))
	}
	if mgmtTx > mem/16 {
		t.Errorf("h1 %s sent %.1f MiB, want far less than the guest's memory: the stream leaked onto the management network", lab.MgmtIface, mib(mgmtTx))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
