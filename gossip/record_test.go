package gossip

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// realFlags is a 150-flag list as /proc/cpuinfo shows on a recent Xeon.
func realFlags() []string {
	base := []string{"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat", "pse36", "clflush", "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm", "pbe", "syscall", "nx", "pdpe1gb", "rdtscp", "lm", "constant_tsc", "art", "arch_perfmon", "pebs", "bts", "rep_good", "nopl", "xtopology", "nonstop_tsc", "cpuid", "aperfmperf", "pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est", "tm2", "ssse3", "sdbg", "fma", "cx16", "xtpr", "pdcm", "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "tsc_deadline_timer", "aes", "xsave", "avx", "f16c", "rdrand", "lahf_lm", "abm", "3dnowprefetch", "cpuid_fault", "epb", "cat_l3", "cdp_l3", "invpcid_single", "intel_ppin", "ssbd", "mba", "ibrs", "ibpb", "stibp", "ibrs_enhanced", "tpr_shadow", "vnmi", "flexpriority", "ept", "vpid", "ept_ad", "fsgsbase", "tsc_adjust", "bmi1", "hle", "avx2", "smep", "bmi2", "erms", "invpcid", "rtm", "cqm", "mpx", "rdt_a", "avx512f", "avx512dq", "rdseed", "adx", "smap", "clflushopt", "clwb", "intel_pt", "avx512cd", "avx512bw", "avx512vl", "xsaveopt", "xsavec", "xgetbv1", "xsaves", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "dtherm", "ida", "arat", "pln", "pts", "hwp", "hwp_act_window", "hwp_epp", "hwp_pkg_req", "pku", "ospke", "avx512_vnni", "md_clear", "flush_l1d", "arch_capabilities", "split_lock_detect", "user_shstk", "waitpkg", "gfni", "vaes", "vpclmulqdq", "avx512_vbmi2", "avx512_bitalg", "tme", "avx512_vpopcntdq", "rdpid", "movdiri", "movdir64b"}
	return base[:150]
}

// randomFlags are 150 incompressible flag names: a record that cannot ride
// UDP gossip even compressed.
func randomFlags() []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, 150)
	for i := range out {
		out[i] = fmt.Sprintf("x%016x", r.Uint64())
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	r := record{Name: "h1", Version: 42, Facts: testFacts("h1")}
	r.Facts.CPUFlags = realFlags()
	b, err := encodeRecord(kindRecord, r)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != kindRecord {
		t.Fatalf("kind byte %d", b[0])
	}
	got, err := decodeRecord(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip = %+v, want %+v", got, r)
	}
	if len(b) > maxGossipRecord {
		t.Errorf("record with 150 real flags is %d bytes, more than %d: it would not be gossiped", len(b), maxGossipRecord)
	}
	t.Logf("record with 150 real CPU flags: %d bytes compressed", len(b))
	if _, err := decodeRecord([]byte("garbage")); err == nil {
		t.Error("decoding garbage succeeded")
	}
	for i := 1; i < len(b)-1; i++ {
		if _, err := decodeRecord(b[1:i]); err == nil {
			t.Fatalf("decoding a record cut to %d of %d bytes succeeded", i, len(b))
		}
	}
	h, err := peekRecord(b[1:])
	if err != nil || h.Name != "h1" || h.Version != 42 {
		t.Errorf("peek = %+v, %v", h, err)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []meta{{Version: 1}, {Version: 1 << 40, Big: true},
		{Version: 7, Leaving: true, Boot: Boot{Expect: 3}}, {Version: 9, Boot: Boot{InMesh: true, Expect: 5}}} {
		got, ok := decodeMeta(m.encode())
		if !ok || got != m {
			t.Errorf("meta %+v round trip = %+v, %v", m, got, ok)
		}
		if len(m.encode()) > 16 {
			t.Errorf("meta is %d bytes", len(m.encode()))
		}
	}
	// The first layout, without the bootstrap expectation, still decodes.
	if got, ok := decodeMeta([]byte{metaFormat, metaBig, 5}); !ok || got != (meta{Version: 5, Big: true}) {
		t.Errorf("first-layout meta = %+v, %v", got, ok)
	}
	for _, b := range [][]byte{nil, {metaFormat}, {9, 0, 1}, {metaFormat, 0, 0xff}, {metaFormat, 0, 1, 0xff},
		{metaFormat, 0, 1, 0xff, 0xff, 0x7f}} {
		if _, ok := decodeMeta(b); ok {
			t.Errorf("decodeMeta(%v) accepted", b)
		}
	}
}

// TestManyCPUFlagsPropagate covers both paths: 150 real flags compress into
// one gossip packet; 150 random flags do not and are pulled over TCP.
func TestManyCPUFlagsPropagate(t *testing.T) {
	agents := startCluster(t, 4)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })

	for _, tc := range []struct {
		name  string
		flags []string
		big   bool
	}{{"real", realFlags(), false}, {"random", randomFlags(), true}} {
		f := testFacts("h03")
		f.CPUFlags = tc.flags
		f.CPUModel = tc.name
		var pullsBefore uint64
		for _, a := range agents {
			pullsBefore += a.pulls.Load()
		}
		agents[3].Update(f)
		agents[3].mu.Lock()
		big := agents[3].selfBig
		agents[3].mu.Unlock()
		if big != tc.big {
			t.Fatalf("%s flags: record big=%v, want %v", tc.name, big, tc.big)
		}
		took := waitFor(t, 10*time.Second, tc.name+" flags on all agents", func() bool {
			for _, a := range agents {
				m, _ := a.Member("h03")
				if m.Facts.CPUModel != tc.name || !reflect.DeepEqual(m.Facts.CPUFlags, tc.flags) {
					return false
				}
			}
			return true
		})
		var pulls uint64
		for _, a := range agents {
			pulls += a.pulls.Load()
		}
		pulls -= pullsBefore
		if tc.big && pulls < 3 {
			t.Errorf("big record reached everyone with %d pulls, want one per peer", pulls)
		}
		t.Logf("%s 150 flags (big=%v) reached 4 agents in %v with %d pulls", tc.name, big, took, pulls)
	}
}
