package migrate

import (
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

const mi = 1 << 20

func TestPredictIdleGuestConvergesInOnePass(t *testing.T) {
	p := Predict(256*mi, 64*mi, 0, 32*mi, 500*time.Millisecond, true)
	if !p.Converges || p.Choice != ChoicePrecopy || p.Passes != 1 {
		t.Fatalf("idle guest: %+v, want pre-copy converging in one pass", p)
	}
	if p.TotalMs != 2000 { // 64 MiB at 32 MiB/s
		t.Errorf("total %d ms, want 2000", p.TotalMs)
	}
}

func TestPredictSlowDirtyingConvergesInPasses(t *testing.T) {
	// 8 MiB/s over 32: every pass is a quarter of the one before
	p := Predict(256*mi, 128*mi, 8*mi, 32*mi, 300*time.Millisecond, true)
	if !p.Converges || p.Choice != ChoicePrecopy || p.Passes < 2 {
		t.Fatalf("%+v, want pre-copy converging in a few passes", p)
	}
	// 4 s + 1 s + 0.25 s + the rest (under 9.6 MiB at 32 MiB/s)
	if p.TotalMs < 5250 || p.TotalMs > 5600 {
		t.Errorf("total %d ms, want ≈ 5.3 s", p.TotalMs)
	}
}

func TestPredictCloseToBandwidthNeedsAutoConverge(t *testing.T) {
	p := Predict(256*mi, 128*mi, 24*mi, 32*mi, 500*time.Millisecond, true)
	if !p.Converges || p.Choice != ChoiceAutoConverge {
		t.Fatalf("%+v, want converging slowly: auto-converge", p)
	}
}

func TestPredictFasterThanLinkNeedsPostCopy(t *testing.T) {
	p := Predict(256*mi, 64*mi, 24*mi, 8*mi, 500*time.Millisecond, true)
	if p.Converges || p.Choice != ChoicePostCopy {
		t.Fatalf("%+v, want not converging: post-copy", p)
	}
	// 8 s first pass, 2 s to the stall auto switches on, then 192 MiB
	// dirtied meanwhile, capped at the 64 MiB in use, pulled at 8 MiB/s
	if p.TotalMs != 8000+2000+8000 {
		t.Errorf("total %d ms, want 18000", p.TotalMs)
	}
	pol := AutoPolicy(p)
	if pol.Name != PolicyAuto || !pol.AllowPostCopy || pol.PostCopyAfterStalls != 1 {
		t.Errorf("auto policy for post-copy: %+v", pol)
	}
}

func TestPredictUnsampledIsOnePassAndDefault(t *testing.T) {
	p := Predict(256*mi, 0, 0, 32*mi, 500*time.Millisecond, false)
	if p.Sampled || p.Choice != ChoiceAutoConverge || p.TotalMs != 8000 || p.DataBytes != 256*mi {
		t.Fatalf("unsampled: %+v", p)
	}
}

func TestAutoPolicyKeepsPostCopyAsLastResort(t *testing.T) {
	for _, c := range []string{ChoicePrecopy, ChoiceAutoConverge, ChoicePostCopy, ""} {
		pol := AutoPolicy(fsm.Prediction{Choice: c})
		if !pol.AllowPostCopy || pol.PostCopyAfterStalls < 1 || pol.AbortOnExhausted {
			t.Errorf("choice %q: %+v has no post-copy last resort", c, pol)
		}
		if (c == ChoicePrecopy) == pol.AutoConverge {
			t.Errorf("choice %q: auto-converge %v", c, pol.AutoConverge)
		}
	}
	def, err := PolicyByName(PolicyAuto)
	if err != nil || !def.AllowPostCopy || def.PostCopyAfterStalls != len(def.DowntimeSteps)+1 {
		t.Errorf("auto before a prediction: %+v, %v", def, err)
	}
}

// TestPredictAutoStartsFromTheLastMigration: the memory to send is the
// last migration's first pass when it is below the hypervisor's figure
// (QEMU's resident set: an upper bound), the later passes and the
// post-copy pull are bounded by the dirty set it found, its setup is
// counted, and where the figure came from is said. The lab's case
// (2026-11-28): a 128 MiB guest whose resident set is all of it, whose
// first pass sent 101 MiB in 1.0 s of setup + 12.6 s, dirtying 24 MiB/s in
// a 32 MiB working set, at 8 MiB/s: its job took 19.0-20.5 s.
func TestPredictAutoStartsFromTheLastMigration(t *testing.T) {
	r := DirtyRate{Bps: 24 * mi, InUseBytes: 128 * mi}
	first := PredictAuto(128*mi, r, History{}, 8*mi, true)
	if first.DataFrom != DataFromMemory || first.DataBytes != 128*mi || first.SetupMs != 0 || first.DirtySetBytes != 0 || first.Choice != ChoicePostCopy {
		t.Fatalf("no history, resident set = memory: %+v", first)
	}
	next := PredictAuto(128*mi, r, History{FirstPassBytes: 101 * mi, DirtySetBytes: 32 * mi, Setup: time.Second}, 8*mi, true)
	if next.DataFrom != DataFromHistory || next.DataBytes != 101*mi || next.DirtySetBytes != 32*mi || next.SetupMs != 1000 ||
		next.Choice != ChoicePostCopy || next.Converges {
		t.Fatalf("with history: %+v", next)
	}
	// 1 s setup + 12.625 s first pass + 2 s to the switch + the 32 MiB dirty set pulled (4 s)
	if next.TotalMs != 1000+12625+2000+4000 {
		t.Errorf("total %d ms, want 19625", next.TotalMs)
	}
	// a hypervisor figure below the history wins (the guest freed memory)
	if p := PredictAuto(128*mi, DirtyRate{InUseBytes: 30 * mi}, History{FirstPassBytes: 45 * mi}, 8*mi, true); p.DataBytes != 30*mi || p.DataFrom != DataFromHypervisor {
		t.Errorf("hypervisor below history: %+v", p)
	}
	// a working set rewritten slower than the link converges in passes
	// of the dirty set
	if p := PredictAuto(128*mi, DirtyRate{Bps: 4 * mi, InUseBytes: 128 * mi}, History{FirstPassBytes: 101 * mi, DirtySetBytes: 32 * mi}, 8*mi, true); !p.Converges {
		t.Errorf("4 MiB/s in a 32 MiB set at 8 MiB/s: %+v, want converging", p)
	}
}
