package sim

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestScaleConcurrentMigrations moves 50 of 1,000 VMs on 20 hosts at once,
// each watched by migrate.Watch under minimal-downtime at the cluster's
// default 52 MiB/s, on one clock running 100× real time.
func TestScaleConcurrentMigrations(t *testing.T) {
	const hosts, perHost, moves = 20, 50, 50
	r := NewRegistry(Config{TimeScale: 100})
	defer r.Close()
	var hs []*Host
	for i := 0; i < hosts; i++ {
		h, err := r.AddHost(HostSpec{Name: fmt.Sprintf("h%02d", i), CPUModel: "Skylake", MemTotalMiB: 256 * 1024, CPUs: 64})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		for v := 0; v < perHost; v++ {
			spec := VMSpec{
				Name: fmt.Sprintf("vm-%02d-%02d", i, v), MemoryMiB: 512 * uint64(1+v%4), VCPUs: 2,
				DirtyMiBps: float64(v % 5 * 5), // 0..20 MiB/s: all converge at 52 MiB/s
				NICs:       []fsm.NIC{{MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", i, v), Network: "prod"}},
			}
			if err := h.Define(spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	pol, _ := migrate.PolicyByName(migrate.PolicyMinimalDowntime)
	cfg := migrate.MonitorConfig{Clock: r.Clock().Now, NewTicker: r.Clock().NewTicker}

	wall, cpu := time.Now(), cpuTime()
	simStart := r.Clock().Now()
	var wg sync.WaitGroup
	errs := make([]error, moves)
	res := make([]migrate.JobStats, moves)
	for k := 0; k < moves; k++ {
		src, dst := hs[k%hosts], hs[(k%hosts+1)%hosts]
		name := fmt.Sprintf("vm-%02d-%02d", k%hosts, k/hosts)
		job, err := src.Migrate(context.Background(), name, pol.Params(migrate.Params{DestURI: dst.URI(), BandwidthMiB: 52}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.VM = name
			res[k], errs[k] = migrate.Watch(context.Background(), job, pol, c, nil)
		}()
	}
	wg.Wait()
	wallUsed, cpuUsed, simUsed := time.Since(wall), cpuTime()-cpu, r.Clock().Now().Sub(simStart)

	var maxDown, maxElapsed time.Duration
	for k, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", k, err)
			continue
		}
		maxDown, maxElapsed = max(maxDown, res[k].Downtime), max(maxElapsed, res[k].Elapsed)
	}
	total := 0
	for i, h := range hs {
		n := len(h.VMNames())
		total += n
		// host i sent its moves to i+1 and received those of i-1
		sent := func(i int) int { return (moves - i + hosts - 1) / hosts }
		if want := perHost - sent(i) + sent((i+hosts-1)%hosts); n != want {
			t.Errorf("%s has %d VMs, want %d", h.Name(), n, want)
		}
		if h.Incoming() != 0 {
			t.Errorf("%s still has %d reservations", h.Name(), h.Incoming())
		}
		if _, _, ok := hs[(i+1)%hosts].VM(fmt.Sprintf("vm-%02d-00", i)); !ok {
			t.Errorf("vm-%02d-00 did not arrive on %s", i, hs[(i+1)%hosts].Name())
		}
	}
	if total != hosts*perHost {
		t.Errorf("%d VMs in all, want %d", total, hosts*perHost)
	}
	if maxDown > 600*time.Millisecond {
		t.Errorf("worst downtime %v", maxDown)
	}
	if wallUsed > 20*time.Second {
		t.Errorf("took %v real", wallUsed)
	}
	t.Logf("%d migrations: %v simulated (longest job %v, worst downtime %v) in %v real, %v CPU",
		moves, simUsed.Round(time.Millisecond), maxElapsed.Round(time.Millisecond), maxDown, wallUsed.Round(time.Millisecond), cpuUsed.Round(time.Millisecond))
}

// TestFiveThousandIdleVMsCostNothing defines 100 hosts × 50 VMs: with no
// migration running nothing subscribes to the clock, so its driver sleeps.
func TestFiveThousandIdleVMsCostNothing(t *testing.T) {
	r := NewRegistry(Config{TimeScale: 50})
	defer r.Close()
	for i := 0; i < 100; i++ {
		h, _ := r.AddHost(HostSpec{Name: fmt.Sprintf("h%03d", i), MemTotalMiB: 512 * 1024, CPUs: 64})
		for v := 0; v < 50; v++ {
			if err := h.Define(VMSpec{Name: fmt.Sprintf("vm-%03d-%02d", i, v), MemoryMiB: 1024, DirtyMiBps: 10}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !r.Clock().idle() {
		t.Error("clock has subscribers with no migration running")
	}
	start := time.Now()
	n := 0
	for _, h := range r.Hosts() {
		doms, _ := h.Domains(context.Background())
		n += len(doms)
	}
	if n != 5000 {
		t.Fatalf("listed %d domains, want 5000", n)
	}
	t.Logf("listed 5,000 domains on 100 hosts in %v", time.Since(start))
}
