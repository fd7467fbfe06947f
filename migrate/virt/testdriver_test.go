package virt

import (
	"context"
	"errors"
	"testing"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// testURI is libvirt's built-in test driver: in-process, no libvirtd needed,
// with one running guest "test" and a fixed fake host. Connections in one
// process share its state while any of them is open.
const testURI = "test:///default"

// openTest opens the test driver or fails loudly: libvirt.so.0 missing means
// the machine lacks the libvirt client library (Debian: libvirt0).
func openTest(t *testing.T) *Hypervisor {
	t.Helper()
	h, err := Open(testURI)
	if err != nil {
		t.Fatalf("open %s (is libvirt0 installed?): %v", testURI, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

func TestTestDriverCapabilities(t *testing.T) {
	h := openTest(t)
	c, err := h.Capabilities(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capabilities: %+v", c)
	// The test driver's fake host: i686, 16 CPUs, 3 GiB (testDriver defaults).
	if c.Arch != "i686" {
		t.Errorf("arch %q, want i686", c.Arch)
	}
	if c.CPUs != 16 {
		t.Errorf("cpus %d, want 16", c.CPUs)
	}
	if c.MemTotalMiB != 3072 {
		t.Errorf("memory %d MiB, want 3072", c.MemTotalMiB)
	}
	if c.MemFreeMiB == 0 || c.MemFreeMiB > c.MemTotalMiB*4 {
		t.Errorf("free memory %d MiB implausible", c.MemFreeMiB)
	}
}

func TestTestDriverDomains(t *testing.T) {
	h := openTest(t)
	doms, err := h.Domains(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 1 {
		t.Fatalf("domains %+v, want exactly the test driver's guest", doms)
	}
	d := doms[0]
	t.Logf("domain: %+v", d)
	if d.Name != "test" || d.State != fsm.VMRunning || d.VCPUs != 2 || d.MemoryMiB != 8192 {
		t.Errorf("domain %+v, want test running with 2 vCPUs and 8192 MiB", d)
	}
	if len(d.NICs) != 1 || d.NICs[0] != (fsm.NIC{MAC: "aa:bb:cc:dd:ee:ff", Network: "default"}) {
		t.Errorf("nics %+v", d.NICs)
	}
	if len(d.Disks) != 1 || d.Disks[0].Source != "/guest/diskimage1" || d.Disks[0].Cache != CacheDefault {
		t.Errorf("disks %+v, want /guest/diskimage1 with default cache", d.Disks)
	}
}

func TestMigrateUnknownDomainIsErrNoDomain(t *testing.T) {
	h := openTest(t)
	_, err := h.Migrate(context.Background(), "no-such-vm", migrate.Params{DestURI: "test:///default"})
	if !errors.Is(err, migrate.ErrNoDomain) {
		t.Fatalf("err %v, want migrate.ErrNoDomain", err)
	}
	var lverr libvirt.Error
	if !errors.As(err, &lverr) || lverr.Code != libvirt.ERR_NO_DOMAIN {
		t.Fatalf("err %v does not keep libvirt's ERR_NO_DOMAIN", err)
	}
}

func TestMigrateNeedsDestination(t *testing.T) {
	h := openTest(t)
	if _, err := h.Migrate(context.Background(), "test", migrate.Params{}); err == nil {
		t.Fatal("migration without destination URI started")
	}
}

func TestOpenBadURIFails(t *testing.T) {
	if h, err := Open("nosuchdriver:///x"); err == nil {
		h.Close()
		t.Fatal("opened a URI no driver serves")
	}
}
