package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPolicyByName(t *testing.T) {
	def, err := PolicyByName("")
	if err != nil || def.Name != PolicyMinimalDowntime {
		t.Fatalf(`PolicyByName("") = %q, %v; want minimal-downtime`, def.Name, err)
	}
	for _, name := range PolicyNames() {
		p, err := PolicyByName(name)
		if err != nil || p.Name != name || p.InitialDowntime <= 0 || p.Description == "" {
			t.Errorf("PolicyByName(%q) = %+v, %v", name, p, err)
		}
	}
	_, err = PolicyByName("yolo")
	if err == nil {
		t.Fatal("unknown policy accepted")
	}
	for _, name := range PolicyNames() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list %q", err, name)
		}
	}
}

func TestPolicyShapes(t *testing.T) {
	md, _ := PolicyByName(PolicyMinimalDowntime)
	want := []time.Duration{150, 200, 300, 400, 500}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if md.InitialDowntime != 100*time.Millisecond || !slices.Equal(md.DowntimeSteps, want) || !md.AutoConverge || !md.AbortOnExhausted || md.AllowPostCopy {
		t.Errorf("minimal-downtime = %+v", md)
	}
	pc, _ := PolicyByName(PolicyPostCopy)
	if !pc.AllowPostCopy || pc.PostCopyAfterStalls != 2 || pc.AbortOnExhausted {
		t.Errorf("post-copy = %+v", pc)
	}
	sw, _ := PolicyByName(PolicySuspendWorkload)
	if !sw.SuspendWhenExhausted || !sw.FitFinalDowntime || sw.FinalDowntime != time.Minute || sw.AbortOnExhausted || !slices.Equal(sw.DowntimeSteps, want) {
		t.Errorf("suspend-workload = %+v", sw)
	}
	pre, _ := PolicyByName(PolicyPrecopy)
	if pre.AutoConverge || pre.AllowPostCopy || len(pre.DowntimeSteps) != 0 || pre.FinalDowntime != 0 || pre.AbortOnExhausted || pre.SuspendWhenExhausted {
		t.Errorf("precopy takes actions: %+v", pre)
	}
}

func TestPolicyCopiesAreIndependent(t *testing.T) {
	a, _ := PolicyByName(PolicyMinimalDowntime)
	a.DowntimeSteps[0] = time.Hour
	b, _ := PolicyByName(PolicyMinimalDowntime)
	if b.DowntimeSteps[0] != 150*time.Millisecond {
		t.Error("changing a returned policy changed the built-in one")
	}
}

func TestPolicyParams(t *testing.T) {
	base := Params{DestURI: "sim://b", BandwidthMiB: 52, CopyStorage: []string{"vda"}}
	pc, _ := PolicyByName(PolicyPostCopy)
	got := pc.Params(base)
	if got.MaxDowntime != 100*time.Millisecond || !got.AutoConverge || !got.AllowPostCopy {
		t.Errorf("post-copy params = %+v", got)
	}
	if got.DestURI != base.DestURI || got.BandwidthMiB != 52 || len(got.CopyStorage) != 1 {
		t.Errorf("params lost the base settings: %+v", got)
	}
	pre, _ := PolicyByName(PolicyPrecopy)
	if got := pre.Params(Params{AutoConverge: true, AllowPostCopy: true}); got.AutoConverge || got.AllowPostCopy || got.MaxDowntime != 300*time.Millisecond {
		t.Errorf("precopy params = %+v", got)
	}
}
