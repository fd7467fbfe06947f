package migrate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

func rule(name, kind string, hard bool, vms, hosts []string) *fsm.AffinityRule {
	return &fsm.AffinityRule{Name: name, Kind: kind, Hard: hard, VMs: vms, VMNames: vms, Hosts: hosts, Since: time.Unix(0, 0)}
}

// A hard rule refuses the hosts that break it, naming the rule in the
// affinity check; a soft rule sends the VM to a host that keeps it even
// when a host that breaks it has more room, and is broken only when no
// passing host keeps it.
func TestPlaceObeysAffinity(t *testing.T) {
	// h2 has the most room: without rules vm1 goes there.
	b := base().host("h2", memFree(60000)).vm("vm9", "h3")
	if p, err := Place(b.st, "vm1", nil); err != nil || p.Host != "h2" {
		t.Fatalf("without rules: %s, %v; want h2", p.Host, err)
	}

	b.st.Affinity["apart"] = rule("apart", fsm.AffinityApart, false, []string{"vm1", "vm9"}, nil)
	b.st.Affinity["near"] = rule("near", fsm.AffinityHostPrefer, false, []string{"vm1"}, []string{"h3"})
	p, err := Place(b.st, "vm1", nil)
	if err != nil || p.Host != "h2" {
		t.Fatalf("soft apart (vm9 on h3) against soft prefer h3: %s, %v; want h2 (one soft rule broken either way, more room)", p.Host, err)
	}
	delete(b.st.Affinity, "apart")
	p, err = Place(b.st, "vm1", nil)
	if err != nil || p.Host != "h3" || !strings.Contains(p.Reason, "keeps soft affinity rule near") {
		t.Fatalf("soft prefer h3: %s (%s), %v; want h3, saying so", p.Host, p.Reason, err)
	}

	b.st.Affinity["must"] = rule("must", fsm.AffinityHostMust, true, []string{"vm1"}, []string{"h2"})
	p, err = Place(b.st, "vm1", nil)
	if err != nil || p.Host != "h2" || !strings.Contains(p.Reason, "breaks soft affinity rule near") {
		t.Fatalf("hard must h2 over soft prefer h3: %s (%s), %v", p.Host, p.Reason, err)
	}
	res := CheckMigration(b.st, "vm1", "h3")
	var aff CheckResult
	for _, r := range res {
		if r.Name == CheckAffinity {
			aff = r
		}
	}
	if aff.OK || !strings.Contains(aff.Message, "rule must (hard host-must): vm vm1 runs only on h2, not on h3") {
		t.Fatalf("affinity check towards h3: %+v", aff)
	}

	b.st.Affinity["avoid"] = rule("avoid", fsm.AffinityHostAvoid, true, []string{"vm1"}, []string{"h2"})
	_, err = Place(b.st, "vm1", nil)
	if !errors.Is(err, ErrNoHost) || !strings.Contains(err.Error(), "h2: affinity: rule avoid") ||
		!strings.Contains(err.Error(), "h3: affinity: rule must") {
		t.Fatalf("no host keeps both hard rules: %v", err)
	}
}

// The scheduler counts the grants of the same pass: two VMs that must be
// apart, drained together, get different hosts.
func TestScheduleKeepsApartWithinOnePass(t *testing.T) {
	b := base().vm("vm2", "h1").host("h2", memFree(60000))
	b.st.Affinity["apart"] = rule("apart", fsm.AffinityApart, true, []string{"vm1", "vm2"}, nil)
	b.queue("vm1")
	b.queue("vm2")
	ds := Schedule(b.st)
	if len(ds) != 2 || ds[0].Fail != "" || ds[1].Fail != "" || ds[0].Dest == ds[1].Dest {
		t.Fatalf("decisions %+v: want vm1 and vm2 on two hosts", ds)
	}
}
