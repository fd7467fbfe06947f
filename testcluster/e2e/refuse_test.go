package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// refusedChecks returns the check names meshctl listed under "migration
// refused:" on stderr.
func refusedChecks(stderr string) []string {
	var names []string
	in := false
	for _, line := range strings.Split(stderr, "\n") {
		switch {
		case strings.HasPrefix(line, "migration refused:"):
			in = true
		case in && strings.HasPrefix(line, "  "):
			if f := strings.Fields(line); len(f) > 0 {
				names = append(names, f[0])
			}
		default:
			in = false
		}
	}
	return names
}

// assertRefused runs meshctl migrate VM --to dest and wants exit 1 with
// exactly the named check refusing, nothing queued, and the VM left where
// it was.
func (m *mesh) assertRefused(t *testing.T, ctx context.Context, vm, from, dest, check string) {
	t.Helper()
	r := m.ctl(ctx, "migrate", vm, "--to", dest, "--wait")
	t.Logf("meshctl migrate %s --to %s: exit %d, stderr:\n%s", vm, dest, r.code, strings.TrimRight(r.stderr, "\n"))
	if r.code != 1 {
		t.Errorf("exit code %d, want 1 (refused): %s", r.code, r)
	}
	if got := refusedChecks(r.stderr); !slices.Equal(got, []string{check}) {
		t.Errorf("refused by checks %v, want exactly [%s]: %s", got, check, r)
	}
	if !strings.Contains(r.stderr, check) {
		t.Errorf("stderr does not name check %s", check)
	}
	for _, mg := range m.migrations(t, ctx) {
		if mg.VM == vm {
			t.Errorf("a refused request queued migration %s (%s)", mg.ID, mg.State)
		}
	}
	m.waitVM(t, ctx, vm, from)
}

// TestRefusalsOnRealHosts: each prerequisite check refuses on real libvirt
// facts (the disk's cache mode from the domain XML, the NIC's bridge, free
// memory from libvirt, the hosts' clusters), with exit code 1 and the
// check's name, before anything is queued.
func TestRefusalsOnRealHosts(t *testing.T) {
	m := sharedMesh(t)
	h1 := m.lab.Hosts[0]

	t.Run("cache-mode", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "wbcache", MemoryMiB: 128, Disk: lab.DiskShared, DiskCache: "writeback"})
		m.assertRefused(t, ctx, "wbcache", "h1", "h2", migrate.CheckCacheMode)
	})

	t.Run("networks", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// A bridge only h1 has: meshd on h2 offers br-vm only.
		const bridge = "br-iso"
		if _, err := h1.Run(ctx, "ip", "link", "add", bridge, "type", "bridge"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = h1.Run(context.Background(), "ip", "link", "del", bridge) })
		if _, err := h1.Run(ctx, "ip", "link", "set", bridge, "up"); err != nil {
			t.Fatal(err)
		}
		m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "isonet", MemoryMiB: 128, Bridge: bridge})
		m.assertRefused(t, ctx, "isonet", "h1", "h2", migrate.CheckNetworks)
	})

	t.Run("memory", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// Every lab host shares this machine's memory, so libvirt reports
		// the same free memory on each, and it moves by gigabytes as other
		// work on the machine comes and goes. A guest of nearly the
		// machine's whole memory (QEMU allocates guest memory lazily, so
		// it still starts) exceeds free memory whatever that work does:
		// the kernel, libvirtd and QEMU alone use more than the margin.
		h2 := m.host(t, ctx, "h2")
		need := h2.MemTotalMiB - 256
		if h2.MemFreeMiB+256 > need {
			t.Fatalf("h2 reports %d of %d MiB free: no room for a guest larger than free memory but smaller than the machine", h2.MemFreeMiB, h2.MemTotalMiB)
		}
		t.Logf("h2: %d MiB free of %d; guest of %d MiB", h2.MemFreeMiB, h2.MemTotalMiB, need)
		m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "bigmem", MemoryMiB: int(need)})
		m.assertRefused(t, ctx, "bigmem", "h1", "h2", migrate.CheckMemory)
	})

	t.Run("same-cluster", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if h3 := m.host(t, ctx, "h3"); h3.Cluster == m.host(t, ctx, "h1").Cluster {
			t.Fatalf("h3 is in cluster %s like h1; the fixture puts it in another", h3.Cluster)
		}
		m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "othercl", MemoryMiB: 128})
		m.assertRefused(t, ctx, "othercl", "h1", "h3", migrate.CheckSameCluster)
	})
}
