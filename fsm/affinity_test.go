package fsm

import (
	"errors"
	"strings"
	"testing"
)

// affinityState is h1..h3 with vm1..vm3 on h1 and vm4 on h2.
func affinityState(t *testing.T) *FSM {
	t.Helper()
	f := cluster3(t, 3)
	must(t, f, CmdSyncVMs, SyncVMs{Host: "h2", VMs: []VM{testVM("vm4", VMRunning)}})
	return f
}

func breaches(t *testing.T, f *FSM, vm, dest string) []string {
	t.Helper()
	s := f.State()
	var out []string
	for _, b := range s.AffinityBreaches(vmNamed(t, s, vm).Key(), dest) {
		out = append(out, b.String())
	}
	return out
}

// Each kind of rule, hard and soft, is broken exactly where it says.
func TestAffinityRuleKinds(t *testing.T) {
	cases := []struct {
		rule   CreateAffinity
		vm     string
		breaks map[string]string // dest → text of the breach; other dests keep the rule
	}{
		{CreateAffinity{Kind: AffinityTogether, Hard: true, VMs: []string{"vm1", "vm4"}}, "vm1",
			map[string]string{"h3": "vm vm1 must run with its group, but vm vm4 is on h2"}},
		{CreateAffinity{Kind: AffinityApart, VMs: []string{"vm1", "vm4"}}, "vm1",
			map[string]string{"h2": "vm vm1 would share h2 with vm vm4"}},
		{CreateAffinity{Kind: AffinityHostMust, Hard: true, VMs: []string{"vm1"}, Hosts: []string{"h3"}}, "vm1",
			map[string]string{"h2": "vm vm1 runs only on h3, not on h2"}},
		{CreateAffinity{Kind: AffinityHostPrefer, VMs: []string{"vm1"}, Hosts: []string{"h2"}}, "vm1",
			map[string]string{"h3": "vm vm1 runs only on h2, not on h3"}},
		{CreateAffinity{Kind: AffinityHostAvoid, Hard: true, VMs: []string{"vm1", "vm2"}, Hosts: []string{"h2"}}, "vm2",
			map[string]string{"h2": "vm vm2 does not run on h2"}},
	}
	for _, c := range cases {
		t.Run(c.rule.Kind, func(t *testing.T) {
			f := affinityState(t)
			c.rule.Name, c.rule.At, c.rule.Actor = "r1", t0, "token:ops"
			must(t, f, CmdCreateAffinity, c.rule)
			for _, dest := range []string{"h2", "h3"} {
				got := breaches(t, f, c.vm, dest)
				want, breaks := c.breaks[dest]
				switch {
				case !breaks && len(got) > 0:
					t.Errorf("%s → %s breaks %v, want no breach", c.vm, dest, got)
				case breaks && (len(got) != 1 || !strings.Contains(got[0], "rule r1 (") || !strings.HasSuffix(got[0], want)):
					t.Errorf("%s → %s: breaches %q, want rule r1 with %q", c.vm, dest, got, want)
				}
			}
			// A VM the rule does not bind is free.
			if got := breaches(t, f, "vm3", "h2"); len(got) > 0 {
				t.Errorf("vm3 is bound by no rule, yet breaks %v", got)
			}
			must(t, f, CmdDeleteAffinity, DeleteAffinity{Name: "r1", At: t0})
			if got := breaches(t, f, c.vm, "h2"); len(got)+len(breaches(t, f, c.vm, "h3")) > 0 {
				t.Errorf("a deleted rule still binds: %v", got)
			}
		})
	}
}

// Where another VM of a rule is headed counts; during a drain, the
// members that share the draining host follow the first one.
func TestAffinityCountsMigrationsAndDrains(t *testing.T) {
	f := affinityState(t)
	must(t, f, CmdCreateAffinity, CreateAffinity{Name: "apart", Kind: AffinityApart, Hard: true, VMs: []string{"vm1", "vm2"}, At: t0})
	must(t, f, CmdCreateAffinity, CreateAffinity{Name: "pair", Kind: AffinityTogether, Hard: true, VMs: []string{"vm1", "vm3"}, At: t0})
	// Not draining: vm1 cannot leave vm3 behind.
	if got := breaches(t, f, "vm1", "h2"); len(got) != 1 || !strings.Contains(got[0], "rule pair") {
		t.Fatalf("vm1 → h2 outside a drain: %v, want rule pair broken", got)
	}
	ids := must(t, f, CmdStartDrain, StartDrain{Host: "h1", At: t0}).([]string)
	if got := breaches(t, f, "vm1", "h2"); len(got) != 0 {
		t.Fatalf("vm1 → h2 during the drain: %v, want none (vm3 follows)", got)
	}
	must(t, f, CmdGrant, Grant{ID: ids[0], Dest: "h2", At: t0}) // vm1 → h2
	if got := breaches(t, f, "vm2", "h2"); len(got) != 1 || !strings.Contains(got[0], "rule apart") {
		t.Fatalf("vm2 → h2 while vm1 is headed there: %v, want rule apart broken", got)
	}
	if got := breaches(t, f, "vm3", "h3"); len(got) != 1 || !strings.Contains(got[0], "vm vm1 is on h2") {
		t.Fatalf("vm3 → h3 while vm1 is headed to h2: %v, want rule pair broken", got)
	}
}

func TestAffinityCommandsRefuseBadRules(t *testing.T) {
	f := affinityState(t)
	for _, c := range []CreateAffinity{
		{Name: "x", Kind: "near", VMs: []string{"vm1", "vm2"}},
		{Name: "x", Kind: AffinityApart, VMs: []string{"vm1"}},
		{Name: "x", Kind: AffinityHostMust, VMs: []string{"vm1"}},
		{Name: "x", Kind: AffinityApart, VMs: []string{"vm1", "vm2"}, Hosts: []string{"h1"}},
		{Name: "bad name!", Kind: AffinityApart, VMs: []string{"vm1", "vm2"}},
	} {
		c.At = t0
		if err := Validate(mustEncode(t, CmdCreateAffinity, c)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%+v) = %v, want malformed", c, err)
		}
	}
	for _, c := range []CreateAffinity{
		{Name: "x", Kind: AffinityApart, VMs: []string{"vm1", "nope"}},
		{Name: "x", Kind: AffinityApart, VMs: []string{"vm1", "vm1"}},
		{Name: "x", Kind: AffinityHostAvoid, VMs: []string{"vm1"}, Hosts: []string{"h9"}},
	} {
		c.At = t0
		if r := run(t, f, CmdCreateAffinity, c); !errors.Is(r.Err, ErrRejected) {
			t.Errorf("create %+v: %v, want rejected", c, r.Err)
		}
	}
	must(t, f, CmdCreateAffinity, CreateAffinity{Name: "x", Kind: AffinityApart, VMs: []string{"vm1", "vm2"}, At: t0})
	if r := run(t, f, CmdCreateAffinity, CreateAffinity{Name: "x", Kind: AffinityApart, VMs: []string{"vm1", "vm3"}, At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Errorf("a second rule x: %v, want rejected", r.Err)
	}
	if r := run(t, f, CmdDeleteAffinity, DeleteAffinity{Name: "y", At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Errorf("delete of an unknown rule: %v, want rejected", r.Err)
	}
	if s := f.State(); len(s.Affinity) != 1 || s.Check() != nil {
		t.Fatalf("rules %v, check %v", s.Affinity, s.Check())
	}
}
