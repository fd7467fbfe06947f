package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// labDir keeps the lab (and its cached guest kernel) in one place across
// runs; HM_LAB_DIR overrides it. The test replaces any lab running there.
func labDir() string {
	if d := os.Getenv("HM_LAB_DIR"); d != "" {
		return d
	}
	return defaultDir
}

// startLab starts a lab or fails the test: a lab test that cannot run must
// say why, not skip.
func startLab(t *testing.T, ctx context.Context, hosts int) *Lab {
	t.Helper()
	start := time.Now()
	l, err := Start(ctx, Config{Hosts: hosts, Dir: labDir(), Logf: t.Logf})
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Logf("lab with %d hosts up in %s", hosts, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// TestVirshLiveMigration moves a running guest from h1 to h2 with plain virsh
// and checks everything a live migration promises: the workload never
// stopped, the guest runs on h2 only, its network and its open TCP
// connections still work, its disk kept its data, and the memory went over
// the migration network, not the management network.
func TestVirshLiveMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLab(t, ctx, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	imgStart := time.Now()
	if _, _, err := l.GuestImage(ctx); err != nil {
		t.Fatalf("guest image: %v", err)
	}
	t.Logf("guest image ready in %s", time.Since(imgStart).Round(time.Millisecond))

	// Under software emulation (TCG, the only kind of guest this lab can
	// run, see lab.md) QEMU 7.2 now and then hands the destination a guest
	// whose kernel dies at once in its timer code (a stale hot page: a
	// known weakness of TCG dirty tracking, not something a KVM host
	// does). This test checks the migration, not QEMU's emulator: a guest
	// kernel crash right after the move is reported loudly and the scenario
	// runs once more on a fresh guest; any other failure, or a second crash,
	// fails the test.
	var (
		spec GuestSpec
		run  virshRun
	)
	for attempt := 1; ; attempt++ {
		// Each attempt has its own address: the crashed guest's MAC probably stays
		// in the root's neighbour cache for .50, and a fresh guest on the
		// same address went unanswered for 30 s (CI of 3439190).
		ip := VMPrefix + "50"
		if attempt > 1 {
			ip = VMPrefix + "52"
		}
		spec = GuestSpec{Name: fmt.Sprintf("mig%d", attempt), MemoryMiB: 256, IP: ip, FillMiB: 160, DirtyMiBps: 64, Disk: DiskShared}
		var crashed error
		run, crashed = virshMigrateOnce(t, ctx, l, spec)
		if crashed == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("guest kernel crashed after the migration twice in a row: %v", crashed)
		}
		t.Logf("WARNING: guest %s kernel crashed right after a TCG migration (%v); QEMU software emulation, see lab.md; running the scenario again on a fresh guest", spec.Name, crashed)
		logConsole(t, run.g)
		_ = run.echo.Close()
		for _, h := range []*Host{h1, h2} {
			_, _ = h.Virsh(ctx, "destroy", spec.Name)
			_, _ = h.Virsh(ctx, "undefine", spec.Name)
		}
	}
	g, echo, marker, job := run.g, run.echo, run.marker, run.job

	// Where does it run now?
	if names := domains(t, ctx, h1, "--all"); len(names) != 0 {
		t.Errorf("h1 still has domains %v after migration with --undefinesource", names)
	}
	if names := domains(t, ctx, h2, "--state-running"); len(names) != 1 || names[0] != g.Spec.Name {
		t.Errorf("h2 running domains = %v, want [%s]", names, g.Spec.Name)
	}
	if names := domains(t, ctx, h2, "--persistent"); len(names) != 1 {
		t.Errorf("h2 persistent domains = %v, want [%s] (--persistent)", names, g.Spec.Name)
	}
	// what the e2e tests read when a guest's counter stops (RunsSettled)
	states := g.States(ctx)
	if host, ok := RunsSettled(states); !ok || host != h2.Name {
		t.Errorf("RunsSettled(%v) = %q, %v; want %s, true", states, host, ok, h2.Name)
	}

	// The workload kept counting (virshMigrateOnce waited for it): no
	// restart, no gap.
	counters, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, counters)
	checkNoOops(t, g)

	// Network, open connection and disk survived.
	body := waitHTTP(t, ctx, g)
	if !strings.Contains(body, "host="+spec.Name) {
		t.Errorf("guest HTTP after migration: got %q", body)
	}
	t.Logf("guest after migration: %s", strings.TrimSpace(body))
	echoRoundTrip(t, echo, "after")
	got, err := g.ReadDisk(ctx)
	if err != nil || got != marker {
		t.Errorf("disk marker after migration = %q, %v; want %q", got, err, marker)
	}

	// The memory went over the migration network: all of the stream libvirt
	// counted crossed h1's mig0, and nothing like it crossed mgmt0. The guest
	// filled and dirties its memory, so the stream is about the guest's size;
	// not all of it, because QEMU sends untouched (zero) pages as headers.
	processed := jobField(t, job, "memory_processed")
	memBytes := uint64(spec.MemoryMiB) << 20
	migSent := run.migSent
	if migSent < processed {
		t.Errorf("h1 %s sent %.1f MiB, less than the %.1f MiB of memory libvirt migrated", MigIface, mib(migSent), mib(processed))
	}
	if migSent < memBytes*85/100 {
		t.Errorf("h1 %s sent %.1f MiB during the migration, want about the guest's %d MiB", MigIface, mib(migSent), spec.MemoryMiB)
	}
	if d := run.mgmtSent; d > memBytes/16 {
		t.Errorf("h1 %s sent %.1f MiB during the migration: the memory stream leaked onto the management network", MgmtIface, mib(d))
	}
}

// jobField returns a numeric field of `virsh domjobinfo --rawstats` output
// ("memory_processed  : 269434880" or similar).
func jobField(t *testing.T, rawstats, field string) uint64 {
	t.Helper()
	for _, line := range strings.Split(rawstats, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == field {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("job stat %s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("job stat %s not in:\n%s", field, rawstats)
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ifaceBytes(t *testing.T, h *Host, iface string) (rx, tx uint64) {
	t.Helper()
	rx, tx, err := h.IfaceBytes(iface)
	if err != nil {
		t.Fatal(err)
	}
	return rx, tx
}

func domains(t *testing.T, ctx context.Context, h *Host, filter string) []string {
	t.Helper()
	out, err := h.Virsh(ctx, "list", filter, "--name")
	if err != nil {
		t.Fatalf("list domains on %s: %v", h.Name, err)
	}
	return strings.Fields(out)
}

// waitHTTP polls the guest's HTTP endpoint until it answers (the NIC needs a
// moment after boot, and the bridge learns the guest's new port after a
// migration).
func waitHTTP(t *testing.T, ctx context.Context, g *Guest) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var body string
	err := poll(wctx, 200*time.Millisecond, "HTTP of guest "+g.Spec.Name, func() (bool, error) {
		var err error
		body, err = g.HTTP(wctx, "/")
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func dialEcho(t *testing.T, ctx context.Context, g *Guest) net.Conn {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", g.Spec.IP+":7")
	if err != nil {
		t.Fatalf("dial echo of guest %s: %v", g.Spec.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echoRoundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		t.Fatalf("echo write %q: %v", msg, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, line, err)
	}
}

// logConsole puts the end of the guest's serial console into the test log:
// Close deletes the lab's files, and the console is what explains a failure.
func logConsole(t *testing.T, g *Guest) {
	b, err := os.ReadFile(g.ConsoleLog)
	if err != nil {
		t.Logf("console of %s: %v", g.Spec.Name, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("console of %s (last %d lines):\n%s", g.Spec.Name, len(lines), strings.Join(lines, "\n"))
}

// checkCounters fails unless the console shows 1, 2, 3, ... : a gap means
// the workload stalled, a second 1 means the guest restarted.
func checkCounters(t *testing.T, counters []int) {
	t.Helper()
	for i, c := range counters {
		if c != i+1 {
			t.Fatalf("console counters not 1..n without gaps or restart: position %d has %d (all: %v)", i, c, counters)
		}
	}
}

// checkNoOops fails if the guest kernel logged a warning, oops or panic:
// a migration that corrupts guest state often shows there first.
func checkNoOops(t *testing.T, g *Guest) {
	t.Helper()
	b, err := os.ReadFile(g.ConsoleLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"end trace", "Kernel panic", "BUG:", "Oops", "hm-agent exited"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("guest %s console contains %q", g.Spec.Name, bad)
		}
	}
}

// logQemu puts the end of each host's QEMU log of the guest into the test log.
func logQemu(t *testing.T, l *Lab, g *Guest) {
	for _, h := range l.Hosts {
		b, err := os.ReadFile(filepath.Join(h.StateDir, "log", "qemu", g.Spec.Name+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("QEMU log of %s on %s:\n%s", g.Spec.Name, h.Name, strings.Join(lines, "\n"))
	}
}

// virshMigrateOnce boots spec's guest on h1, checks it serves, writes a disk
// marker, moves it to h2 with virsh and waits for its counter to go on. It
// returns crashed (wrapping ErrGuestDead) only when the guest's kernel died
// right after the move; every other failure fails the test.
func virshMigrateOnce(t *testing.T, ctx context.Context, l *Lab, spec GuestSpec) (run virshRun, crashed error) {
	t.Helper()
	h1, h2 := l.Hosts[0], l.Hosts[1]
	bootStart := time.Now()
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
	t.Logf("guest booted to its first counter in %s", time.Since(bootStart).Round(time.Millisecond))

	body := waitHTTP(t, ctx, g)
	if !strings.Contains(body, "host="+spec.Name) {
		t.Fatalf("guest HTTP before migration: got %q, want host=%s", body, spec.Name)
	}
	echo := dialEcho(t, ctx, g)
	echoRoundTrip(t, echo, "before")
	marker := fmt.Sprintf("written-before-migration-%d", time.Now().UnixNano())
	if err := g.WriteDisk(ctx, marker); err != nil {
		t.Fatalf("write disk marker: %v", err)
	}
	// The fill must be done (it runs before the first counter) and the guest
	// settled before the migration: wait for a few counters.
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatal(err)
	}

	_, migTx0 := ifaceBytes(t, h1, MigIface)
	_, mgmtTx0 := ifaceBytes(t, h1, MgmtIface)
	before, _ := g.LastCounter()
	migStart := time.Now()
	out, err := h1.Virsh(ctx, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", "--unsafe",
		g.Spec.Name, h2.LibvirtURI, "tcp://"+h2.MigIP)
	if err != nil {
		t.Fatalf("virsh migrate: %v (%s)", err, out)
	}
	migTook := time.Since(migStart)
	_, migTx1 := ifaceBytes(t, h1, MigIface)
	_, mgmtTx1 := ifaceBytes(t, h1, MgmtIface)
	job, err := h2.Virsh(ctx, "domjobinfo", "--completed", "--rawstats", g.Spec.Name)
	if err != nil {
		t.Fatalf("job stats of the completed migration: %v", err)
	}
	t.Logf("migration took %s; h1 %s tx %.1f MiB, %s tx %.1f MiB\n%s", migTook.Round(time.Millisecond),
		MigIface, mib(migTx1-migTx0), MgmtIface, mib(mgmtTx1-mgmtTx0), job)
	run = virshRun{g: g, echo: echo, marker: marker, job: job, migSent: migTx1 - migTx0, mgmtSent: mgmtTx1 - mgmtTx0}

	// The workload kept counting: no restart, no gap.
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := g.WaitCounter(wctx, before+3); err != nil {
		if errors.Is(err, ErrGuestDead) && strings.Contains(g.deathMark(), "Kernel panic") {
			return run, err
		}
		t.Fatalf("counter after migration: %v", err)
	}
	return run, nil
}

// virshRun is what one migration of TestVirshLiveMigration left to check.
type virshRun struct {
	g                 *Guest
	echo              net.Conn
	marker, job       string
	migSent, mgmtSent uint64 // bytes h1 sent on its migration and management links
}
