package virt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestLabInventory reads a real host: capabilities from QEMU's libvirtd and a
// running guest's NIC and disk as the lab defined them.
func TestLabInventory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1 := l.Hosts[0]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-inv", MemoryMiB: 192, Disk: lab.DiskShared, DiskCache: "writeback"})
	hv := openHost(t, h1)

	c, err := hv.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h1 capabilities: %+v", c)
	if c.Arch != "x86_64" || c.CPUs < 1 || c.MemTotalMiB < 1024 || c.MemFreeMiB == 0 || c.MemFreeMiB > c.MemTotalMiB {
		t.Errorf("implausible capabilities %+v", c)
	}
	if c.CPUModel == "" {
		t.Errorf("no host CPU model in capabilities")
	}

	d, ok := findDomain(t, ctx, hv, "vt-inv")
	if !ok {
		t.Fatal("vt-inv not in h1's domains")
	}
	t.Logf("domain: %+v", d)
	if d.State != fsm.VMRunning || d.MemoryMiB != 192 || d.VCPUs != 1 || d.UUID == "" {
		t.Errorf("domain %+v, want running, 192 MiB, 1 vCPU, a UUID", d)
	}
	if len(d.NICs) != 1 || d.NICs[0].Network != lab.VMBridge || d.NICs[0].MAC == "" {
		t.Errorf("nics %+v, want one on bridge %s", d.NICs, lab.VMBridge)
	}
	want := fsm.Disk{Target: "vda", Source: g.DiskPath, Cache: "writeback", Format: "qcow2", SizeBytes: 64 << 20}
	if len(d.Disks) != 1 || d.Disks[0] != want {
		t.Errorf("disks %+v, want [%+v]", d.Disks, want)
	}
}

// TestLabMigrate moves a running guest with a shared disk from h1 to h2 over
// the migration network with a bandwidth cap, sampling the job as it runs.
func TestLabMigrate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	// No dirtying workload: with the lab's guestagent dirtying memory, the
	// guest panics on the destination after any migration, virsh's included
	// (reported to the lab's owner); the fill still gives 96 MiB of real data.
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-mig", MemoryMiB: 256, FillMiB: 96,
		IP: lab.VMPrefix + "61", Disk: lab.DiskShared})
	if err := g.WaitCounter(ctx, 3); err != nil { // fill done, workload settled
		t.Fatal(err)
	}
	src, dst := openHost(t, h1), openHost(t, h2)
	if d, ok := findDomain(t, ctx, src, "vt-mig"); !ok || d.State != fsm.VMRunning {
		t.Fatalf("h1 inventory: vt-mig %+v found=%v, want running", d, ok)
	}

	const maxDT = 250 * time.Millisecond
	start := time.Now()
	j, err := src.Migrate(ctx, "vt-mig", migrate.Params{
		DestURI:      h2.ClientURI,
		MigrateURI:   "tcp://" + h2.MigIP,
		BandwidthMiB: 48,
		MaxDowntime:  maxDT,
		Unsafe:       true, // the lab's shared dir is a plain local fs
		TLS:          true, // the lab's hosts have QEMU's certificates
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := watch(t, ctx, j, 100*time.Millisecond, nil)
	took := time.Since(start)
	if err := j.Err(); err != nil {
		t.Fatalf("migration failed after %s: %v", took, err)
	}
	r := j.Result()
	t.Logf("migrated in %s (job %s): downtime %s, %.1f MiB sent, %d iterations, %d samples",
		took.Round(time.Millisecond), r.Elapsed, r.Downtime, mib(r.DataProcessed), r.MemIteration, len(samples))

	var running int
	for _, s := range samples {
		if s.MemTotal > 0 && s.DataProcessed > 0 {
			running++
			if s.MaxDowntime != maxDT {
				t.Errorf("sample max downtime %s, want the %s asked for", s.MaxDowntime, maxDT)
			}
			if s.MemBps > 60<<20 {
				t.Errorf("sample transfer rate %.1f MiB/s over the 48 MiB/s cap", mib(s.MemBps))
			}
		}
	}
	if running == 0 {
		t.Errorf("no sample caught the running job: %+v", samples)
	}
	if r.Downtime <= 0 || r.Downtime > 5*time.Second {
		t.Errorf("result downtime %s, want a real switch-over pause", r.Downtime)
	}
	if r.DataProcessed < 96<<20 {
		t.Errorf("result says %.1f MiB sent, want at least the guest's 96 MiB fill", mib(r.DataProcessed))
	}

	assertRunsOnlyOn(t, ctx, l, "vt-mig", h2)
	if d, ok := findDomain(t, ctx, dst, "vt-mig"); !ok || d.State != fsm.VMRunning {
		t.Errorf("h2 inventory: vt-mig %+v found=%v, want running", d, ok)
	}
	if _, ok := findDomain(t, ctx, src, "vt-mig"); ok {
		t.Errorf("h1 inventory still lists vt-mig")
	}
	last, _ := g.LastCounter()
	assertCountedOn(t, ctx, g, last+2)

	// The ended job answers with its result and refuses actions.
	if s, err := j.Stats(); err != nil || s != r {
		t.Errorf("stats after end = %+v, %v; want the result", s, err)
	}
	if err := j.Abort(); !errors.Is(err, ErrJobEnded) {
		t.Errorf("abort after end: %v, want ErrJobEnded", err)
	}
}

// TestLabAbort aborts a capped migration of a busy guest mid-way: the guest
// must stay running on h1 and leave nothing on h2.
func TestLabAbort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-abort", MemoryMiB: 256, FillMiB: 128, DirtyMiBps: 16, Disk: lab.DiskShared})
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatal(err)
	}
	src := openHost(t, h1)
	// 8 MiB/s for 128 MiB of data keeps the job running for ~16 s.
	j, err := src.Migrate(ctx, "vt-abort", migrate.Params{
		DestURI: h2.ClientURI, MigrateURI: "tcp://" + h2.MigIP, BandwidthMiB: 8, Unsafe: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the job is clearly under way, then retune and abort it.
	var progressed migrate.JobStats
	watch(t, ctx, j, 100*time.Millisecond, func(s migrate.JobStats) bool {
		progressed = s
		return s.DataProcessed < 8<<20
	})
	select {
	case <-j.Done():
		t.Fatalf("job ended before it could be aborted: err %v, last sample %+v", j.Err(), progressed)
	default:
	}
	if err := j.SetMaxDowntime(400 * time.Millisecond); err != nil {
		t.Fatalf("set max downtime: %v", err)
	}
	if s, err := j.Stats(); err != nil || s.MaxDowntime != 400*time.Millisecond {
		t.Errorf("after SetMaxDowntime stats = %+v, %v; want max downtime 400ms", s, err)
	}
	abortAt := time.Now()
	if err := j.Abort(); err != nil {
		t.Fatalf("abort: %v", err)
	}
	watch(t, ctx, j, 100*time.Millisecond, nil)
	t.Logf("aborted after %.1f MiB sent; job ended %s after Abort: %v",
		mib(progressed.DataProcessed), time.Since(abortAt).Round(time.Millisecond), j.Err())
	if !errors.Is(j.Err(), ErrAborted) {
		t.Errorf("err %v, want ErrAborted", j.Err())
	}
	var lverr libvirt.Error
	if !errors.As(j.Err(), &lverr) {
		t.Errorf("err %v does not carry libvirt's error", j.Err())
	}
	assertRunsOnlyOn(t, ctx, l, "vt-abort", h1)
	last, _ := g.LastCounter()
	assertCountedOn(t, ctx, g, last+2)
}

// TestLabCopyStorage moves a guest whose disk is local to h1: the image is
// pre-created on h2 with PrepareDestDisks and copied live.
func TestLabCopyStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-copy", MemoryMiB: 256, IP: lab.VMPrefix + "63", Disk: lab.DiskLocal})
	marker := "written-on-h1-" + time.Now().Format(time.RFC3339Nano)
	eventually(t, ctx, "write disk marker", func(ctx context.Context) error { return g.WriteDisk(ctx, marker) })
	src := openHost(t, h1)
	d, ok := findDomain(t, ctx, src, "vt-copy")
	if !ok || len(d.Disks) != 1 || d.Disks[0].SizeBytes == 0 {
		t.Fatalf("h1 inventory: %+v found=%v, want one sized disk", d, ok)
	}
	destImage := filepath.Join(h2.LocalBacking, filepath.Base(g.DiskPath))
	if _, err := os.Stat(destImage); err == nil {
		t.Fatalf("%s exists before PrepareDestDisks", destImage)
	}
	if err := PrepareDestDisks(ctx, h2.ClientURI, d.Disks); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(destImage); err != nil {
		t.Fatalf("PrepareDestDisks made no image on h2: %v", err)
	}
	// Idempotent for a retry.
	if err := PrepareDestDisks(ctx, h2.ClientURI, d.Disks); err != nil {
		t.Fatalf("second prepare: %v", err)
	}

	start := time.Now()
	j, err := src.Migrate(ctx, "vt-copy", migrate.Params{
		DestURI: h2.ClientURI, MigrateURI: "tcp://" + h2.MigIP, BandwidthMiB: 64,
		CopyStorage: []string{d.Disks[0].Target}, TLS: true, // the NBD copy over TLS too
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := watch(t, ctx, j, 100*time.Millisecond, nil)
	took := time.Since(start)
	if err := j.Err(); err != nil {
		t.Fatalf("migration with disk copy failed after %s: %v", took, err)
	}
	r := j.Result()
	var diskSeen uint64
	for _, s := range append(samples, r) {
		diskSeen = max(diskSeen, s.DiskTotal)
	}
	t.Logf("migrated with disk copy in %s: downtime %s, %.1f MiB sent, disk total %.1f MiB",
		took.Round(time.Millisecond), r.Downtime, mib(r.DataProcessed), mib(diskSeen))
	if r.Downtime <= 0 {
		t.Errorf("result downtime %s", r.Downtime)
	}
	assertRunsOnlyOn(t, ctx, l, "vt-copy", h2)
	eventually(t, ctx, "read disk marker on h2", func(ctx context.Context) error {
		got, err := g.ReadDisk(ctx)
		if err == nil && got != marker {
			return fmt.Errorf("marker %q, want %q", got, marker)
		}
		return err
	})
}

// TestLabPostCopy starts a capped pre-copy that allows post-copy, switches
// it to post-copy half-way and checks the guest finished the move intact.
func TestLabPostCopy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-post", MemoryMiB: 256, FillMiB: 96, Disk: lab.DiskShared})
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatal(err)
	}
	src := openHost(t, h1)
	start := time.Now()
	j, err := src.Migrate(ctx, "vt-post", migrate.Params{
		DestURI: h2.ClientURI, MigrateURI: "tcp://" + h2.MigIP, BandwidthMiB: 16,
		AllowPostCopy: true, AutoConverge: true, Unsafe: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var before migrate.JobStats
	watch(t, ctx, j, 100*time.Millisecond, func(s migrate.JobStats) bool {
		before = s
		return s.DataProcessed < 16<<20
	})
	if err := j.StartPostCopy(); err != nil {
		t.Fatalf("start post-copy after %.1f MiB: %v", mib(before.DataProcessed), err)
	}
	switchedAt := time.Since(start)
	if s, err := j.Stats(); err != nil || !s.PostCopy {
		t.Errorf("stats after StartPostCopy = %+v, %v; want PostCopy", s, err)
	}
	watch(t, ctx, j, 100*time.Millisecond, nil)
	took := time.Since(start)
	if err := j.Err(); err != nil {
		t.Fatalf("post-copy migration failed: %v", err)
	}
	r := j.Result()
	t.Logf("post-copy: switched after %s (%.1f MiB pre-copied), done in %s, downtime %s, %.1f MiB sent",
		switchedAt.Round(time.Millisecond), mib(before.DataProcessed), took.Round(time.Millisecond), r.Downtime, mib(r.DataProcessed))
	t.Logf("post-copy result: %+v", r)
	if !r.PostCopy {
		t.Errorf("result %+v does not say post-copy", r)
	}
	assertRunsOnlyOn(t, ctx, l, "vt-post", h2)
	last, _ := g.LastCounter()
	assertCountedOn(t, ctx, g, last+2)
}
