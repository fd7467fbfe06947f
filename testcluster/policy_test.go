package testcluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// A guest dirtying memory faster than the bandwidth cap: plain pre-copy hits
// its completion timeout and the VM stays put; post-copy finishes it.
func TestStallingGuestPolicies(t *testing.T) {
	c := New(t, Options{Hosts: 2, VMsPerHost: 2, VMMemMiB: 512, TimeScale: 40})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs", func() bool { return len(l.FSM().State().VMs) == 4 })
	h1, _ := c.Reg.Host("h1")
	for _, vm := range []string{"vm-h1-0", "vm-h1-1"} {
		if err := h1.SetDirtyRate(vm, 60); err != nil {
			t.Fatal(err)
		}
	}
	pre, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-0", Policy: "precopy", BandwidthMiB: 30})
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitFinal(pre, 60*time.Second)
	if m.State != fsm.MigFailed || !strings.Contains(m.Reason, "did not complete in time") {
		t.Fatalf("precopy of a stalling guest: %s %q, want failed on a timeout", m.State, m.Reason)
	}
	if m.Attempt != 1 {
		t.Fatalf("a guest that cannot converge must not be retried elsewhere (attempt %d)", m.Attempt)
	}
	pc, err := c.Migrate(l.APIAddr(), api.MigrateRequest{VM: "vm-h1-1", Policy: "post-copy", BandwidthMiB: 30})
	if err != nil {
		t.Fatal(err)
	}
	m = c.waitFinal(pc, 60*time.Second)
	if m.State != fsm.MigSucceeded {
		t.Fatalf("post-copy: %s %q", m.State, m.Reason)
	}
	if !m.Progress.PostCopy && !hasAction(m.Progress.Actions, "post-copy") {
		t.Fatalf("post-copy policy finished without switching: actions %v", m.Progress.Actions)
	}
	c.assertOneHostPerVM(t)
}

func hasAction(actions []string, sub string) bool {
	for _, a := range actions {
		if strings.Contains(a, sub) {
			return true
		}
	}
	return false
}
