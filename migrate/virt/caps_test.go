package virt

import (
	"strings"
	"testing"
)

const skylakeCaps = `<capabilities><host>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <cpu>
    <arch>x86_64</arch>
    <model>Skylake-Client-IBRS</model>
    <vendor>Intel</vendor>
    <topology sockets='1' dies='1' cores='2' threads='1'/>
    <feature name='ss'/>
    <feature name='vmx'/>
    <feature name='pdcm'/>
    <pages unit='KiB' size='4'/>
  </cpu>
</host></capabilities>`

func TestParseCaps(t *testing.T) {
	c, err := parseCaps(skylakeCaps)
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != "x86_64" || c.CPUModel != "Skylake-Client-IBRS" {
		t.Errorf("arch %q model %q", c.Arch, c.CPUModel)
	}
	if got := strings.Join(c.CPUFlags, ","); got != "ss,vmx,pdcm" {
		t.Errorf("flags %q, want ss,vmx,pdcm", got)
	}
	if _, err := parseCaps("<capabilities><host>"); err == nil {
		t.Error("truncated capabilities parsed without error")
	}
}
