package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// maskedFeature is the TCG CPU feature h2 lacks (startMesh's lab config):
// one TCG emulates, that no x86 model the other tests pin requires (3DNow!
// extensions: AMD's EPYC models and qemu64 lack them), so only the guest of
// TestCPUBaselineRefusal cares.
const maskedFeature = "3dnowext"

// TestCPUBaselineRefusal: with h2's TCG CPU lacking 3dnowext (as its own
// libvirt sees it), c1's baseline, first h1's alone, is lowered by
// libvirt's baseline of h1 and h2 once h2 said it lacks it (no guest runs
// that needs it), both hosts Up, and a guest on h1 whose CPU requires
// 3dnowext is refused to h2 by the cpu-model check naming 3dnowext, from
// h2's libvirt's virConnectCompareHypervisorCPU.
func TestCPUBaselineRefusal(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var cl api.Cluster
	var ctlErr error
	_ = testcluster.Poll(time.Minute, 500*time.Millisecond, func() bool {
		// h1 alone (the bootstrap) sets the first baseline; the leader
		// lowers it once h2's libvirt answered that it lacks it.
		ctlErr = m.ctlJSON(ctx, &cl, "cluster", "c1")
		return ctlErr != nil || slices.Equal(cl.CPUBaselineHosts, []string{"h1", "h2"})
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	if cl.CPUBaselineXML == "" || !slices.Equal(cl.CPUBaselineHosts, []string{"h1", "h2"}) || slices.Contains(cl.CPUBaselineFeatures, maskedFeature) {
		t.Fatalf("c1's baseline: model %q from %v, features %v: want one from h1 and h2 without %s",
			cl.CPUBaselineModel, cl.CPUBaselineHosts, cl.CPUBaselineFeatures, maskedFeature)
	}
	t.Logf("c1 baseline %s from %v: %d features", cl.CPUBaselineModel, cl.CPUBaselineHosts, len(cl.CPUBaselineFeatures))
	// The leader re-reads h2's health on its next reconcile pass after the
	// baseline is lowered: until then h2 may still be NonOperational under
	// the first baseline.
	var notUp string
	_ = testcluster.Poll(30*time.Second, 500*time.Millisecond, func() bool {
		notUp = ""
		for _, h := range []string{"h1", "h2"} {
			if v := m.host(t, ctx, h); v.State != api.HostUp {
				notUp = fmt.Sprintf("%s is %s (%s)", h, v.State, v.StateReason)
			}
		}
		return notUp == ""
	})
	if notUp != "" {
		t.Fatalf("%s 30 s after the baseline of its own cluster was lowered to admit it", notUp)
	}

	m.bootSpec(t, ctx, m.lab.Hosts[0], lab.GuestSpec{Name: "needs3dnow", MemoryMiB: 128, CPUModel: "qemu64", CPUFeatures: []string{maskedFeature}})
	// h2 compares the guest's CPU within its next inventory read.
	var msg string
	_ = testcluster.Poll(time.Minute, 500*time.Millisecond, func() bool {
		var cands []migrate.Candidate
		if ctlErr = m.ctlJSON(ctx, &cands, "migrate", "needs3dnow", "--dry-run"); ctlErr != nil {
			return true
		}
		for _, c := range cands {
			for _, r := range c.Results {
				if c.Host == "h2" && r.Name == migrate.CheckCPUModel && !r.OK && strings.Contains(r.Message, "h2's libvirt") {
					msg = r.Message
				}
			}
		}
		return msg != ""
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	if !strings.Contains(msg, maskedFeature) {
		t.Fatalf("no cpu-model refusal of h2 naming %s from h2's libvirt within a minute (last: %q)", maskedFeature, msg)
	}
	t.Logf("dry run, h2: cpu-model: %s", msg)
	m.assertRefused(t, ctx, "needs3dnow", "h1", "h2", migrate.CheckCPUModel)
	r := m.ctl(ctx, "migrate", "needs3dnow", "--to", "h2")
	if !strings.Contains(r.stderr, maskedFeature) {
		t.Fatalf("meshctl's refusal does not name %s: %s", maskedFeature, r)
	}
}
