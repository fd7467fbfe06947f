package virt

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// The lab tests share one two-host lab: starting one costs seconds, and only
// one lab may run on the machine at a time (run with -p 1, not alongside the
// lab package's own tests). TestMain closes it.
var (
	labOnce sync.Once
	theLab  *lab.Lab
	labErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theLab != nil {
		if err := theLab.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "close lab: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sharedLab starts the lab on first use or fails the test with the reason
// (not root, no libvirtd/qemu, another lab running...).
func sharedLab(t *testing.T) *lab.Lab {
	t.Helper()
	labOnce.Do(func() {
		// Generous: Start waits while another process owns the lab.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		dir := os.Getenv("HM_LAB_DIR")
		theLab, labErr = lab.Start(ctx, lab.Config{Hosts: 2, Dir: dir})
		if labErr == nil {
			_, _, labErr = theLab.GuestImage(ctx)
		}
		if labErr == nil {
			fmt.Fprintf(os.Stderr, "lab with 2 hosts and guest image up in %s\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if labErr != nil {
		t.Fatalf("start lab (needs root, libvirtd, qemu; only one lab per machine): %v", labErr)
	}
	return theLab
}

// openHost opens the driver on a lab host from the root namespace.
func openHost(t *testing.T, h *lab.Host) *Hypervisor {
	t.Helper()
	hv, err := Open(h.ClientURI)
	if err != nil {
		t.Fatalf("open %s: %v", h.Name, err)
	}
	t.Cleanup(func() { hv.Close() })
	return hv
}

// defineGuest boots a guest on h and removes it from every host at the end,
// so the shared lab is clean for the next test.
func defineGuest(t *testing.T, ctx context.Context, l *lab.Lab, h *lab.Host, spec lab.GuestSpec) *lab.Guest {
	t.Helper()
	start := time.Now()
	g, err := l.DefineGuest(ctx, h, spec)
	if err != nil {
		t.Fatalf("define guest: %v", err)
	}
	t.Logf("guest %s booted on %s in %s", spec.Name, h.Name, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			logConsole(t, g)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, host := range l.Hosts {
			host.Virsh(cctx, "destroy", spec.Name)
			host.Virsh(cctx, "undefine", spec.Name)
		}
	})
	return g
}

// findDomain returns the named domain from hv's inventory.
func findDomain(t *testing.T, ctx context.Context, hv *Hypervisor, name string) (migrate.Domain, bool) {
	t.Helper()
	doms, err := hv.Domains(ctx)
	if err != nil {
		t.Fatalf("domains on %s: %v", hv.URI(), err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d, true
		}
	}
	return migrate.Domain{}, false
}

// virshNames lists domain names on h as virsh sees them (independent of the
// driver under test).
func virshNames(t *testing.T, ctx context.Context, h *lab.Host, filter string) []string {
	t.Helper()
	out, err := h.Virsh(ctx, "list", filter, "--name")
	if err != nil {
		t.Fatalf("virsh list on %s: %v", h.Name, err)
	}
	return strings.Fields(out)
}

// assertRunsOnlyOn checks with virsh that the guest runs on want and is not
// defined on any other host.
func assertRunsOnlyOn(t *testing.T, ctx context.Context, l *lab.Lab, name string, want *lab.Host) {
	t.Helper()
	for _, h := range l.Hosts {
		all := virshNames(t, ctx, h, "--all")
		running := virshNames(t, ctx, h, "--state-running")
		if h == want {
			if !slices.Contains(running, name) {
				t.Errorf("%s: running %v, want %s among them", h.Name, running, name)
			}
		} else if slices.Contains(all, name) {
			t.Errorf("%s still has %s defined (all domains %v)", h.Name, name, all)
		}
	}
}

// assertCountedOn checks the guest kept printing 1, 2, 3... with no gap and
// no restart, up to at least n (so it ran on after the migration).
func assertCountedOn(t *testing.T, ctx context.Context, g *lab.Guest, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := g.WaitCounter(wctx, n); err != nil {
		t.Fatalf("guest stopped counting: %v", err)
	}
	counters, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counters {
		if c != i+1 {
			t.Fatalf("console counters not 1..n without gap or restart: position %d has %d (all: %v)", i, c, counters)
		}
	}
}

// watch samples the job's stats every interval until it ends or ctx does,
// and returns the samples. Sampling on a ticker while waiting on Done is the
// monitor's own pattern, not a sleep.
func watch(t *testing.T, ctx context.Context, j migrate.Job, interval time.Duration, each func(migrate.JobStats) bool) []migrate.JobStats {
	t.Helper()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var samples []migrate.JobStats
	for {
		select {
		case <-j.Done():
			return samples
		case <-ctx.Done():
			t.Fatalf("migration did not end: %v (last sample %+v)", ctx.Err(), last(samples))
		case <-tick.C:
			callStart := time.Now()
			s, err := j.Stats()
			if err != nil {
				t.Fatalf("stats: %v", err)
			}
			if d := time.Since(callStart); d > time.Second {
				t.Logf("Stats took %s", d.Round(time.Millisecond))
			}
			if testing.Verbose() {
				t.Logf("sample: elapsed %s, processed %.1f MiB, remaining %.1f MiB, %.1f MiB/s, iteration %d",
					s.Elapsed, mib(s.DataProcessed), mib(s.DataRemaining), mib(s.MemBps), s.MemIteration)
			}
			samples = append(samples, s)
			if each != nil && !each(s) {
				return samples
			}
		}
	}
}

func last(s []migrate.JobStats) migrate.JobStats {
	if len(s) == 0 {
		return migrate.JobStats{}
	}
	return s[len(s)-1]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func logConsole(t *testing.T, g *lab.Guest) {
	b, err := os.ReadFile(g.ConsoleLog)
	if err != nil {
		t.Logf("console of %s: %v", g.Spec.Name, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	t.Logf("console of %s (last %d lines):\n%s", g.Spec.Name, len(lines), strings.Join(lines, "\n"))
}

// eventually retries f every 200ms until it succeeds or 30s pass: the guest's
// HTTP needs a moment after boot, and the bridges relearn its port after a
// migration.
func eventually(t *testing.T, ctx context.Context, what string, f func(context.Context) error) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f(wctx)
		if err == nil {
			return
		}
		select {
		case <-wctx.Done():
			t.Fatalf("%s: %v (last error: %v)", what, wctx.Err(), err)
		case <-tick.C:
		}
	}
}
