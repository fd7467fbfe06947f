package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// nextIP hands every guest of the run its own VM-network address
// (lab.VMPrefix + 50, 51, ...): guests of earlier tests may still be in a
// bridge's forwarding table.
var nextIP atomic.Int32

func guestIP() string { return fmt.Sprintf("%s%d", lab.VMPrefix, 50+nextIP.Add(1)) }

// bootGuest boots a guest whose CPU model is pinned to the hosts' CPU model
// as the mesh reports it, the way oVirt pins a cluster CPU type.
// TestCPUModelOfDefaultGuest covers plain guests with libvirt's default model.
func (m *mesh) bootGuest(t *testing.T, ctx context.Context, h *lab.Host, spec lab.GuestSpec) *lab.Guest {
	t.Helper()
	if spec.CPUModel == "" {
		spec.CPUModel = m.host(t, ctx, h.Name).CPUModel
	}
	return m.bootSpec(t, ctx, h, spec)
}

// bootSpec defines and starts a guest on h exactly as spec says, waits until
// meshd lists it on h, and removes it from every host when the test ends.
func (m *mesh) bootSpec(t *testing.T, ctx context.Context, h *lab.Host, spec lab.GuestSpec) *lab.Guest {
	t.Helper()
	if spec.IP == "" {
		spec.IP = guestIP()
	}
	start := time.Now()
	g, err := m.lab.DefineGuest(ctx, h, spec)
	t.Cleanup(func() { m.removeGuest(t, spec.Name, g) })
	if err != nil {
		t.Fatalf("define guest %s on %s: %v", spec.Name, h.Name, err)
	}
	t.Logf("guest %s (%d MiB, disk %q, cpu %q, bridge %q) booted on %s in %s", spec.Name, g.Spec.MemoryMiB, spec.Disk,
		spec.CPUModel, spec.Bridge, h.Name, time.Since(start).Round(time.Millisecond))
	m.waitVM(t, ctx, spec.Name, h.Name)
	return g
}

// removeGuest destroys and undefines the guest wherever it is, deletes its
// disk images, and waits until the mesh forgot it, so the next test (a drain,
// say) does not see it. On failure it first logs the end of the console.
func (m *mesh) removeGuest(t *testing.T, name string, g *lab.Guest) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if t.Failed() && g != nil {
		logConsole(t, g.ConsoleLog)
	}
	for _, h := range m.lab.Hosts {
		_, _ = h.Virsh(ctx, "destroy", name)
		_, _ = h.Virsh(ctx, "undefine", name)
		if g != nil && g.DiskPath != "" {
			_, _ = h.Run(ctx, "rm", "-f", g.DiskPath)
		}
	}
	m.waitNoVM(t, ctx, name)
}

// logConsole puts the end of a guest's serial console into the test log.
func logConsole(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("console %s: %v", path, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	t.Logf("console %s (last %d lines):\n%s", filepath.Base(path), len(lines), strings.Join(lines, "\n"))
}

// domains lists the names virsh list shows on h with the given filter.
func domains(t *testing.T, ctx context.Context, h *lab.Host, filter string) []string {
	t.Helper()
	out, err := h.Virsh(ctx, "list", filter, "--name")
	if err != nil {
		t.Fatalf("virsh list on %s: %v", h.Name, err)
	}
	return strings.Fields(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// assertRunsOnlyOn checks with virsh on every host that the guest runs on
// want, is defined there persistently, and is neither running nor defined
// anywhere else (the migration undefines the source).
func (m *mesh) assertRunsOnlyOn(t *testing.T, ctx context.Context, name, want string) {
	t.Helper()
	for _, h := range m.lab.Hosts {
		running := contains(domains(t, ctx, h, "--state-running"), name)
		defined := contains(domains(t, ctx, h, "--all"), name)
		if h.Name == want {
			if !running {
				t.Errorf("virsh on %s: %s is not running there", h.Name, name)
			}
			if !contains(domains(t, ctx, h, "--persistent"), name) {
				t.Errorf("virsh on %s: %s is not persistent there", h.Name, name)
			}
			continue
		}
		if running || defined {
			t.Errorf("virsh on %s: %s still there (running %v, defined %v); want it on %s only", h.Name, name, running, defined, want)
		}
	}
}

// waitHTTP polls the guest's HTTP endpoint until it answers; after a
// migration the switch learns the guest's new port from its announce.
func waitHTTP(t *testing.T, ctx context.Context, g *lab.Guest, within time.Duration) string {
	t.Helper()
	var body string
	var last error
	err := testcluster.Poll(within, 200*time.Millisecond, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, last = g.HTTP(cctx, "/")
		return last == nil
	})
	if err != nil {
		if p := lab.ConsoleKernelPanic(g.ConsoleLog); p != "" {
			t.Fatalf("%s: HTTP of guest %s: %v: its kernel panicked (%q); QEMU software emulation, see lab.md",
				lab.GuestCrashMark, g.Spec.Name, err, p)
		}
		t.Fatalf("HTTP of guest %s: %v (last: %v)", g.Spec.Name, err, last)
	}
	return body
}
