package virt

import (
	"slices"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/migrate"
)

// TestVerdictOfLibvirtMessage: libvirt's incompatibility error names the
// missing features; another message is kept as the reason.
func TestVerdictOfLibvirtMessage(t *testing.T) {
	v := verdictOf("the CPU is incompatible with host CPU: Host CPU does not provide required features: aes, avx2")
	if v.OK || !slices.Equal(v.Missing, []string{"aes", "avx2"}) {
		t.Fatalf("verdict %+v", v)
	}
	v = verdictOf("the CPU is incompatible with host CPU: Host CPU does not strictly match guest CPU: Extra features: pcid")
	if v.OK || len(v.Missing) != 0 || !strings.Contains(v.Reason, "Extra features") {
		t.Fatalf("verdict %+v", v)
	}
}

// TestHostModelOfDomainCaps: the host-model mode becomes a custom CPU with
// its model, vendor and features by policy.
func TestHostModelOfDomainCaps(t *testing.T) {
	doc := `<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>qemu</domain><arch>x86_64</arch>
<cpu><mode name='host-passthrough' supported='no'/>
<mode name='host-model' supported='yes'><model fallback='forbid'>EPYC-Milan</model><vendor>AMD</vendor>
<feature policy='require' name='x2apic'/><feature policy='disable' name='svm'/></mode></cpu></domainCapabilities>`
	x, err := hostModelOf(doc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := migrate.ParseCPUDef(x)
	if err != nil {
		t.Fatalf("%v: %s", err, x)
	}
	if d.Model != "EPYC-Milan" || d.Vendor != "AMD" || !slices.Equal(d.Features, []string{"x2apic"}) || !slices.Equal(d.Disabled, []string{"svm"}) {
		t.Fatalf("host CPU %+v from %s", d, x)
	}
}
