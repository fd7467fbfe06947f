package lab

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// The domain must be software-emulated, keep one console file across hosts
// and put its NIC on the VM bridge; these are what the lab's migrations rely on.
func TestDomainXML(t *testing.T) {
	spec, err := GuestSpec{Name: "x1", IP: "10.79.0.60", FillMiB: 100, DirtyMiBps: 8, Disk: DiskShared,
		FillMarker: "hostmesh-marker-0123456789abcdef"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	s, err := domainXML(spec, "/k", "/i", "/shared/console/x1.log", "/shared/disks/x1.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(s); err != nil {
		t.Fatalf("parse own XML: %v", err)
	}
	if d.Type != "qemu" {
		t.Errorf("domain type %q, want qemu (KVM guests hang in the lab)", d.Type)
	}
	if d.Memory.Value != 256 || d.Memory.Unit != "MiB" || d.VCPU.Value != 1 {
		t.Errorf("memory %d %s, vcpus %d; want defaults 256 MiB, 1", d.Memory.Value, d.Memory.Unit, d.VCPU.Value)
	}
	for _, w := range []string{"console=ttyS0", "hm.ip=10.79.0.60/24", "hm.fill=100", "hm.dirty=8", "hm.name=x1",
		"hm.marker=hostmesh-marker-0123456789abcdef"} {
		if !strings.Contains(d.OS.Cmdline, w) {
			t.Errorf("cmdline %q lacks %q", d.OS.Cmdline, w)
		}
	}
	f := d.Devices.Serials[0].Source.File
	if f.Path != "/shared/console/x1.log" || f.Append != "on" {
		t.Errorf("serial file %+v: want the shared console, appended (the destination must not truncate it)", f)
	}
	if br := d.Devices.Interfaces[0].Source.Bridge.Bridge; br != VMBridge {
		t.Errorf("NIC bridge %q, want %q", br, VMBridge)
	}
	disk := d.Devices.Disks[0]
	if disk.Driver.Cache != "none" || disk.Driver.Type != "qcow2" || disk.Source.File.File != "/shared/disks/x1.qcow2" {
		t.Errorf("disk %+v %+v", disk.Driver, disk.Source.File)
	}
}

func TestGuestSpecValidation(t *testing.T) {
	for _, s := range []GuestSpec{
		{Name: ""},
		{Name: "bad name"},
		{Name: "small", MemoryMiB: 64},
		{Name: "fat", MemoryMiB: 256, FillMiB: 200},
		{Name: "disk", Disk: "nfs"},
		{Name: "short-marker", FillMarker: "abc"},
		{Name: "spaced-marker", FillMarker: "hostmesh marker 0123456789"},
	} {
		if _, err := s.withDefaults(); err == nil {
			t.Errorf("spec %+v accepted", s)
		}
	}
	if _, err := (GuestSpec{Name: "ok-1", MemoryMiB: 96}).withDefaults(); err != nil {
		t.Errorf("minimal spec refused: %v", err)
	}
}

func TestHostUUIDsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 1; i <= 40; i++ {
		u := hostUUID(newHost("/x", i, "").Name)
		if seen[u] || len(u) != 36 {
			t.Fatalf("host uuid %q duplicate or malformed", u)
		}
		seen[u] = true
	}
}
