package lab

import (
	"strings"
	"testing"
)

// TestMaskTCG: only the TCG section's property turns false; KVM's stays;
// an unknown feature is an error.
func TestMaskTCG(t *testing.T) {
	doc := `<qemuCaps>
  <hostCPU type='kvm' model='base' migratability='yes'>
    <property name='3dnowext' type='boolean' value='true' migratable='yes'/>
  </hostCPU>
  <hostCPU type='tcg' model='base' migratability='yes'>
    <property name='aes' type='boolean' value='true' migratable='yes'/>
    <property name='3dnowext' type='boolean' value='true' migratable='yes'/>
  </hostCPU>
</qemuCaps>`
	out, n, err := maskTCG(doc, []string{"3dnowext"})
	if err != nil || n != 1 {
		t.Fatalf("mask: %d, %v", n, err)
	}
	tcg := out[strings.Index(out, "type='tcg'"):]
	if !strings.Contains(tcg, "<property name='3dnowext' type='boolean' value='false'/>") || !strings.Contains(tcg, "name='aes' type='boolean' value='true'") {
		t.Fatalf("TCG section:\n%s", tcg)
	}
	if kvm := out[:strings.Index(out, "type='tcg'")]; !strings.Contains(kvm, "name='3dnowext' type='boolean' value='true'") {
		t.Fatalf("KVM section changed:\n%s", kvm)
	}
	if _, n, err := maskTCG(out, []string{"3dnowext"}); err != nil || n != 0 {
		t.Fatalf("masking again: %d, %v", n, err)
	}
	if _, _, err := maskTCG(doc, []string{"nosuch"}); err == nil {
		t.Fatal("an unknown feature was masked")
	}
}
