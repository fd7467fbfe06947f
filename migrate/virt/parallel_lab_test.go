package virt

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestLabParallelOverTLS moves a running guest with 4 connections
// (VIR_MIGRATE_PARALLEL) over TLS, the mesh's default transport: the
// migration completes, the destination held more than one migration
// connection from the source while it ran, and the guest counts on.
func TestLabParallelOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-par", MemoryMiB: 256, FillMiB: 96, Disk: lab.DiskShared})
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatal(err)
	}
	src := openHost(t, h1)
	const conns = 4
	j, err := src.Migrate(ctx, "vt-par", migrate.Params{
		DestURI:      h2.ClientURI,
		MigrateURI:   "tcp://" + h2.MigIP,
		BandwidthMiB: 32, // long enough to see the connections
		MaxDowntime:  300 * time.Millisecond,
		Parallel:     conns,
		Unsafe:       true,
		TLS:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Count the established TCP connections from h1's migration address
	// on h2 while the job runs (ss in h2's namespace), in the background
	// so that sampling the job is not held up.
	var mu sync.Mutex
	most := 0
	cctx, stopCount := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			n := migrationConns(cctx, h2, h1.MigIP)
			mu.Lock()
			most = max(most, n)
			mu.Unlock()
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	watch(t, ctx, j, 200*time.Millisecond, nil)
	stopCount()
	wg.Wait()
	if err := j.Err(); err != nil {
		t.Fatalf("parallel migration over TLS failed: %v", err)
	}
	r := j.Result()
	t.Logf("migrated with %d connections over TLS: job %s, downtime %s, %.1f MiB sent; at most %d connections from h1 seen on h2",
		conns, r.Elapsed, r.Downtime, mib(r.DataProcessed), most)
	if most < 2 {
		t.Errorf("at most %d migration connection(s) from h1 on h2 during the job, want several (%d asked)", most, conns)
	}
	assertRunsOnlyOn(t, ctx, l, "vt-par", h2)
	n, err := g.LastCounter()
	if err != nil {
		t.Fatal(err)
	}
	assertCountedOn(t, ctx, g, n+2)
}

// migrationConns counts h's established TCP connections whose peer is
// peerIP, as ss sees them in h's namespace (0 when ss fails: the next
// sample counts again).
func migrationConns(ctx context.Context, h *lab.Host, peerIP string) int {
	out, err := h.Run(ctx, "ss", "-Htn", "state", "established", "dst", peerIP)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// TestLabSampleDirtyRate measures a dirtying guest's dirty rate and memory
// in use as the auto policy's prediction does, before any migration.
func TestLabSampleDirtyRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := sharedLab(t)
	h1 := l.Hosts[0]
	g := defineGuest(t, ctx, l, h1, lab.GuestSpec{Name: "vt-rate", MemoryMiB: 256, FillMiB: 64, DirtyMiBps: 16, Disk: lab.DiskShared})
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatal(err)
	}
	hv := openHost(t, h1)
	start := time.Now()
	r, err := hv.SampleDirtyRate(ctx, migrate.DomainRef{Name: "vt-rate"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sampled in %s: dirty %.1f MiB/s, in use %.1f MiB", time.Since(start).Round(time.Millisecond), mib(r.Bps), mib(r.InUseBytes))
	if r.Bps < 1<<20 {
		t.Errorf("dirty rate %.2f MiB/s of a guest asked to dirty 16 MiB/s: want at least 1 MiB/s", mib(r.Bps))
	}
	if r.InUseBytes < 64<<20 || r.InUseBytes > 256<<20 {
		t.Errorf("in use %.1f MiB, want between the 64 MiB fill and the 256 MiB of memory (the cap)", mib(r.InUseBytes))
	}
	// below the sampled rate pre-copy cannot converge
	bw := max(1, r.Bps>>21) << 20
	if p := migrate.Predict(256<<20, r.InUseBytes, r.Bps, bw, 500*time.Millisecond, true); p.Converges || p.Choice != migrate.ChoicePostCopy {
		t.Errorf("prediction at %.1f MiB/s of a guest dirtying %.1f MiB/s: %+v, want post-copy", mib(bw), mib(r.Bps), p)
	}
}
