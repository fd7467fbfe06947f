package virt

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

func parseFile(t *testing.T, name string) migrate.Domain {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDomainXML(string(b))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return d
}

func TestParseDomainNICsDisksCPU(t *testing.T) {
	d := parseFile(t, "web.xml")
	want := migrate.Domain{
		Name:      "web",
		UUID:      "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
		MemoryMiB: 2048, // <memory unit='GiB'>2</memory>, not currentMemory
		VCPUs:     2,    // the maximum, not current='1'
		CPUModel:  "Skylake-Client",
		CPUFlags:  []string{"pcid", "ssbd"}, // required ones only
		NICs: []fsm.NIC{
			{MAC: "52:54:00:aa:00:01", Network: "prod", VLAN: 42}, // network name, not its bridge
			{MAC: "52:54:00:aa:00:02", Network: "br-mig"},
		},
		Disks: []fsm.Disk{ // the CD-ROM is left out
			{Target: "vda", Source: "/srv/shared/web.qcow2", Cache: "none", Format: "qcow2"},
			{Target: "vdb", Source: "/var/lib/libvirt/images/web-scratch.img", Cache: CacheDefault, Format: "raw"},
			{Target: "vdc", Source: "/dev/vg0/web-data", Cache: "directsync", Format: "raw"},
		},
	}
	// The <cpu> element is kept as libvirt wrote it, for the hosts to
	// compare (virConnectCompareHypervisorCPU).
	if !strings.Contains(d.CPUXML, "Skylake-Client") || !strings.HasPrefix(d.CPUXML, "<cpu") {
		t.Fatalf("CPU definition %q", d.CPUXML)
	}
	want.CPUXML = d.CPUXML
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", d, want)
	}
}

func TestParseDomainHostPassthroughAndDefaultUnits(t *testing.T) {
	d := parseFile(t, "passthrough.xml")
	if d.MemoryMiB != 512 {
		t.Errorf("memory %d MiB, want 512 (524288 KiB)", d.MemoryMiB)
	}
	if d.VCPUs != 4 {
		t.Errorf("vcpus %d, want 4", d.VCPUs)
	}
	if d.CPUModel != "host-passthrough" || d.CPUFlags != nil {
		t.Errorf("cpu %q %v, want host-passthrough and no flags", d.CPUModel, d.CPUFlags)
	}
	if len(d.NICs) != 0 {
		t.Errorf("nics %v, want none", d.NICs)
	}
	wantDisks := []fsm.Disk{
		{Target: "vda", Source: "/data/batch.qcow2", Cache: "writeback", Format: "qcow2"},
		{Target: "vdb", Source: "ssd/batch-scratch", Cache: "none", Format: "raw"},
	}
	if !reflect.DeepEqual(d.Disks, wantDisks) {
		t.Errorf("disks %+v, want %+v", d.Disks, wantDisks)
	}
}

func TestParseDomainRejectsGarbage(t *testing.T) {
	if _, err := parseDomainXML("<domain><name>x</name"); err == nil {
		t.Fatal("truncated XML parsed without error")
	}
	if _, err := parseDomainXML("<domain><name>x</name><memory unit='parsecs'>1</memory></domain>"); err == nil {
		t.Fatal("unknown memory unit accepted")
	}
}

func TestScaleBytes(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		unit string
		def  uint64
		want uint64
	}{
		{1, "", 1024, 1024},
		{1, "KiB", 1, 1024},
		{1, "k", 1, 1024},
		{1, "KB", 1, 1000},
		{3, "MiB", 1, 3 << 20},
		{2, "G", 1, 2 << 30},
		{5, "bytes", 1024, 5},
	} {
		got, err := scaleBytes(c.v, c.unit, c.def)
		if err != nil || got != c.want {
			t.Errorf("scaleBytes(%d, %q) = %d, %v; want %d", c.v, c.unit, got, err, c.want)
		}
	}
}

// Passthrough devices (hostdev, and an SR-IOV interface) are reported by
// name: the mesh then keeps the VM where it is.
func TestParseDomainHostDevices(t *testing.T) {
	d := parseFile(t, "gpu.xml")
	want := []string{"pci 0000:03:00.0", "usb 0x046d:0xc52b", "mdev c2177883-f1bb-47f0-914d-32a22e3a8804", "sr-iov pci 0000:05:10.1"}
	if !reflect.DeepEqual(d.HostDevices, want) {
		t.Fatalf("host devices %q, want %q", d.HostDevices, want)
	}
	if web := parseFile(t, "web.xml"); web.HostDevices != nil {
		t.Fatalf("web.xml has no host device, parsed %q", web.HostDevices)
	}
}
