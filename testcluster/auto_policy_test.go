package testcluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// The auto policy through the mesh: the source samples each guest before
// its job, the prediction picks post-copy for a guest dirtying faster than
// the cap and pre-copy for a calm one, both move, and each migration's
// record keeps its prediction next to the outcome. A suspend-workload
// migration of a stalling guest moves it too, its pause in the downtime.
func TestAutoPolicyPredictsAndRecords(t *testing.T) {
	c := New(t, Options{Hosts: 2, VMsPerHost: 3, VMMemMiB: 512, TimeScale: 40})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 6 })
	h1, _ := c.Reg.Host("h1")
	for vm, rate := range map[string]float64{"vm-h1-0": 60, "vm-h1-1": 2, "vm-h1-2": 60} {
		if err := h1.SetDirtyRate(vm, rate); err != nil {
			t.Fatal(err)
		}
	}
	// The dry run predicts the same, asked of h2 (the guest sampled on
	// h1 over its host port) and of h1 (sampled there).
	h2api := c.Node(c.indexOf("h2")).APIAddr()
	code, out, errOut := c.meshctl(t, h2api, "migrate", "vm-h1-0", "--to", "h2", "--bandwidth", "30", "--policy", "auto", "--dry-run")
	for _, want := range []string{"prediction to h2 (asked with --to), policy auto:", "dirty rate          60.0 MiB/s", "bandwidth           30 MiB/s",
		"pre-copy converges  no", "auto would pick     post-copy"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("meshctl migrate --dry-run of a guest dirtying 60 MiB/s at 30 MiB/s: want %q (exit %d):\n%s%s", want, code, out, errOut)
		}
	}
	var cands []api.Candidate
	code, out, errOut = c.meshctl(t, c.Node(c.indexOf("h1")).APIAddr(), "migrate", "vm-h1-1", "--bandwidth", "30", "--dry-run", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &cands) != nil {
		t.Fatalf("meshctl migrate --dry-run --json (exit %d):\n%s%s", code, out, errOut)
	}
	if len(cands) != 1 || cands[0].Prediction == nil {
		t.Fatalf("dry run: %+v, want h2 with a prediction", cands)
	}
	if p := cands[0].Prediction; p.Chosen != "placement" || !p.Sampled || !p.Converges || p.Choice != migrate.ChoicePrecopy ||
		p.GrantedMiB != 30 || p.DirtyRateBps != 2<<20 || p.TotalMs <= 0 || p.Policy == "" {
		t.Fatalf("dry run of a calm guest at 30 MiB/s: %+v, want a sampled pre-copy converging", *p)
	}
	for _, tc := range []struct {
		vm, choice string
		converges  bool
	}{{"vm-h1-0", migrate.ChoicePostCopy, false}, {"vm-h1-1", migrate.ChoicePrecopy, true}} {
		id, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: tc.vm, Policy: migrate.PolicyAuto, BandwidthMiB: 30})
		if err != nil {
			t.Fatal(err)
		}
		m := c.waitFinal(id, 60*time.Second)
		if m.State != fsm.MigSucceeded {
			t.Fatalf("auto migration of %s: %s %q", tc.vm, m.State, m.Reason)
		}
		pr := m.Progress.Prediction
		if pr == nil || !pr.Sampled || pr.Choice != tc.choice || pr.Converges != tc.converges || pr.TotalMs <= 0 {
			t.Fatalf("%s: recorded prediction %+v, want a sampled %s (converges %v)", tc.vm, pr, tc.choice, tc.converges)
		}
		t.Logf("%s: predicted %s in %d ms, took %d ms (actions %v)", tc.vm, pr.Choice, pr.TotalMs, m.Progress.ElapsedMs, m.Progress.Actions)
	}
	// and meshctl migrations shows each prediction next to the outcome
	if code, out, errOut := c.meshctl(t, l.APIAddr(), "migrations"); code != 0 || !strings.Contains(out, "PREDICTED") ||
		!strings.Contains(out, " no-conv post-copy") || !strings.Contains(out, " conv pre-copy") {
		t.Fatalf("meshctl migrations: want the predictions (exit %d):\n%s%s", code, out, errOut)
	}
	id, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-2", Policy: migrate.PolicySuspendWorkload, BandwidthMiB: 30})
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitFinal(id, 90*time.Second)
	if m.State != fsm.MigSucceeded || !hasAction(m.Progress.Actions, "suspend") || m.Progress.SuspendedAtMs <= 0 {
		t.Fatalf("suspend-workload of a stalling guest: %s %q, actions %v", m.State, m.Reason, m.Progress.Actions)
	}
	if pause := m.Progress.ElapsedMs - m.Progress.SuspendedAtMs; m.DowntimeMs < pause {
		t.Errorf("downtime %d ms, but the guest stood suspended %d ms", m.DowntimeMs, pause)
	}
	c.assertOneHostPerVM(t)
}
