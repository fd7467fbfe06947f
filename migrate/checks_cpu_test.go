package migrate

import (
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

// TestCPUModelCheckReadsVerdicts: the cpu-model check judges a VM with a
// <cpu> by the destination's verdict, names what it lacks, ignores what
// the source lacks too, and falls back to flag lists without a verdict.
func TestCPUModelCheckReadsVerdicts(t *testing.T) {
	const xml = "<cpu mode='custom' match='exact'><model>Haswell</model><feature policy='require' name='3dnowext'/></cpu>"
	dig := fsm.CPUDigest(xml)
	verdict := func(ok bool, missing ...string) func(*fsm.Host) {
		return func(h *fsm.Host) {
			h.CPUVerdicts = []fsm.CPUVerdict{{Digest: dig, OK: ok, Missing: missing}}
		}
	}
	withCPU := func(v *fsm.VM) { v.CPUXML, v.CPUModel = xml, "Haswell" }
	cases := []struct {
		name     string
		src, dst func(*fsm.Host)
		ok       bool
		want     string
	}{
		{"destination lacks a feature", verdict(true), verdict(false, "3dnowext"), false, "h2 lacks CPU feature 3dnowext required by vm vm1 (CPU Haswell, compared by h2's libvirt)"},
		{"destination runs it", verdict(true), verdict(true), true, "h2's libvirt runs vm vm1's CPU (Haswell)"},
		{"source lacks it too", verdict(false, "avx512f"), verdict(false, "avx512f"), true, "h2 lacks only what h1 lacks too"},
		{"destination lacks more than the source", verdict(false, "rdpid"), verdict(false, "3dnowext", "rdpid"), false, "lacks CPU feature 3dnowext required"},
		{"no verdict yet", verdict(true), func(*fsm.Host) {}, true, "h2 has not compared this CPU yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder().host("h1", tc.src).host("h2", tc.dst).vm("vm1", "h1", withCPU)
			for _, r := range CheckMigration(b.st, "vm1", "h2") {
				if r.Name != CheckCPUModel {
					continue
				}
				if r.OK != tc.ok || !strings.Contains(r.Message, tc.want) {
					t.Fatalf("cpu-model: ok %v %q, want ok %v containing %q", r.OK, r.Message, tc.ok, tc.want)
				}
				return
			}
			t.Fatal("no cpu-model result")
		})
	}
}
