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
	// 8 s first pass, then 192 MiB dirtied meanwhile (capped at memory: 256) pulled at 8 MiB/s
	if p.TotalMs != 8000+24000 {
		t.Errorf("total %d ms, want 32000", p.TotalMs)
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
