package virt

import (
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// domainXMLOf writes the domain XML that says what d says: the parse of
// it must give d back.
func domainXMLOf(t *testing.T, d migrate.Domain) string {
	t.Helper()
	x := libvirtxml.Domain{Type: "kvm", Name: d.Name, UUID: d.UUID,
		Memory: &libvirtxml.DomainMemory{Value: uint(d.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(d.VCPUs)}}
	if d.CPUModel != "" || len(d.CPUFlags) > 0 {
		x.CPU = &libvirtxml.DomainCPU{Mode: "custom"}
		if d.CPUModel != "" {
			x.CPU.Model = &libvirtxml.DomainCPUModel{Value: d.CPUModel}
		}
		for _, f := range d.CPUFlags {
			x.CPU.Features = append(x.CPU.Features, libvirtxml.DomainCPUFeature{Policy: "require", Name: f})
		}
	}
	x.Devices = &libvirtxml.DomainDeviceList{}
	for _, n := range d.NICs {
		i := libvirtxml.DomainInterface{MAC: &libvirtxml.DomainInterfaceMAC{Address: n.MAC},
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}}}
		if n.VLAN != 0 {
			i.VLan = &libvirtxml.DomainInterfaceVLan{Tags: []libvirtxml.DomainInterfaceVLanTag{{ID: uint(n.VLAN)}}}
		}
		x.Devices.Interfaces = append(x.Devices.Interfaces, i)
	}
	for _, k := range d.Disks {
		disk := libvirtxml.DomainDisk{Device: "disk", Target: &libvirtxml.DomainDiskTarget{Dev: k.Target},
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: k.Format},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: k.Source}}}
		if k.Cache != CacheDefault {
			disk.Driver.Cache = k.Cache
		}
		x.Devices.Disks = append(x.Devices.Disks, disk)
	}
	s, err := x.Marshal()
	if err != nil {
		t.Fatalf("marshal %+v: %v", d, err)
	}
	return s
}

// unitBytes is libvirt's size units, for the check of memory sizes.
var unitBytes = map[string]int64{"": 1 << 10, "b": 1, "bytes": 1, "kb": 1e3, "k": 1 << 10, "kib": 1 << 10,
	"mb": 1e6, "m": 1 << 20, "mib": 1 << 20, "gb": 1e9, "g": 1 << 30, "gib": 1 << 30, "tb": 1e12, "t": 1 << 40, "tib": 1 << 40}

// FuzzParseDomainXML feeds the domain XML parser any bytes. It never
// panics; what it parses is within what libvirt can describe (no vCPU
// count or VLAN tag wrapped around, the memory size exact: a size that
// does not fit is an error, not a wrapped figure), and it round-trips:
// the XML written from the parsed facts parses to the same facts.
func FuzzParseDomainXML(f *testing.F) {
	for _, name := range []string{"web.xml", "passthrough.xml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		"", "<domain/>", "<domain><name>x</name", "<domain><memory unit='parsecs'>1</memory></domain>",
		"<domain><memory unit='TiB'>18446744073709551615</memory></domain>",
		"<domain><vcpu>18446744073709551615</vcpu></domain>",
		"<domain><devices><interface type='bridge'><source bridge='br0'/><vlan><tag id='99999'/></vlan></interface></devices></domain>",
		"<domain><devices><disk type='volume' device='lun'><source pool='p' volume='v'/><driver cache='unsafe'/></disk></devices></domain>",
		"<domain><devices><disk type='network'><source protocol='rbd' name='pool/img'/></disk></devices></domain>",
		"<domain><cpu mode='host-model'><feature name='x' policy='force'/></cpu></domain>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := parseDomainXML(doc)
		if err != nil {
			return
		}
		if d.VCPUs < 0 || d.VCPUs > fsm.MaxCPUs {
			t.Fatalf("parsed %d vCPUs", d.VCPUs)
		}
		for _, n := range d.NICs {
			if n.VLAN < 0 || n.VLAN > 4095 {
				t.Fatalf("parsed VLAN %d", n.VLAN)
			}
		}
		var x libvirtxml.Domain
		if err := x.Unmarshal(doc); err != nil {
			t.Fatalf("parsed what libvirtxml refuses: %v", err)
		}
		if x.Memory != nil {
			mul, ok := unitBytes[strings.ToLower(x.Memory.Unit)]
			if !ok {
				t.Fatalf("memory unit %q accepted", x.Memory.Unit)
			}
			want := new(big.Int).Mul(new(big.Int).SetUint64(uint64(x.Memory.Value)), big.NewInt(mul))
			want.Rsh(want, 20)
			if !want.IsUint64() || want.Uint64() != d.MemoryMiB {
				t.Fatalf("memory %d %s parsed as %d MiB, want %s MiB", x.Memory.Value, x.Memory.Unit, d.MemoryMiB, want)
			}
		}
		if len(d.CPUXML) > fsm.MaxCPUXML {
			t.Fatalf("a CPU definition of %d bytes", len(d.CPUXML))
		}
		// The round trip writes the facts back, not the <cpu> element.
		d.CPUXML = ""
		again, err := parseDomainXML(domainXMLOf(t, d))
		again.CPUXML = ""
		if err != nil {
			t.Fatalf("the XML of %+v does not parse: %v", d, err)
		}
		if !reflect.DeepEqual(again, d) {
			t.Fatalf("round trip:\n%+v\nparsed back as\n%+v", d, again)
		}
	})
}
