package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

func TestPlaceChooses(t *testing.T) {
	big := func(v *fsm.VM) { v.MemoryMiB = 20480 }
	cases := []struct {
		name    string
		setup   func(b *builder)
		exclude []string
		want    string
		reason  string
	}{
		{name: "most free memory", setup: func(b *builder) {
			b.host("h2", memFree(16384)).host("h3", memFree(30720)).host("h4", memFree(8192))
		}, want: "h3", reason: "h3: 30720 MiB room, 0 VMs, 0 incoming migrations; best of 3 passing hosts"},
		{name: "free memory after incoming", setup: func(b *builder) {
			b.host("h2", memFree(16384)).host("h3", memFree(30720)).vm("vm9", "h2", big)
			b.running("vm9", "h3")
		}, want: "h2", reason: "h2: 16384 MiB room, 1 VMs, 0 incoming migrations"},
		{name: "spread: fewest VMs", setup: func(b *builder) {
			b.vm("a", "h2").vm("b", "h2").vm("c", "h3")
		}, want: "h3", reason: "h3: 32768 MiB room, 1 VMs"},
		{name: "shut off VMs do not count", setup: func(b *builder) {
			off := func(v *fsm.VM) { v.State = fsm.VMShutoff }
			b.vm("a", "h2", off).vm("b", "h2", off).vm("c", "h3")
		}, want: "h2", reason: "h2: 32768 MiB room, 0 VMs"},
		{name: "fewest incoming migrations", setup: func(b *builder) {
			b.host("h2", memFree(32768+2048)).host("h4", memFree(0)).vm("a", "h4")
			b.running("a", "h2")
		}, want: "h3", reason: "h3: 32768 MiB room, 0 VMs, 0 incoming migrations"},
		{name: "respects exclude", exclude: []string{"h2"}, want: "h3", reason: "best of 1 passing hosts"},
		{name: "tie goes to lowest name", want: "h2", reason: "best of 2 passing hosts"},
		{name: "skips failing hosts", setup: func(b *builder) {
			b.host("h3", memFree(60000), func(h *fsm.Host) { h.State = fsm.HostMaintenance })
		}, want: "h2", reason: "best of 1 passing hosts"},
		{name: "other clusters are not considered", setup: func(b *builder) {
			b.host("h9", inCluster("c2"), memFree(60000))
		}, want: "h2", reason: "best of 2 passing hosts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			if tc.setup != nil {
				tc.setup(b)
			}
			p, err := Place(b.st, "vm1", tc.exclude)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if p.Host != tc.want {
				t.Fatalf("Place chose %s, want %s (%s)", p.Host, tc.want, p.Reason)
			}
			if !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", p.Reason, tc.reason)
			}
			if p.Candidates[0].Host != p.Host || !p.Candidates[0].OK {
				t.Errorf("first candidate %+v is not the choice", p.Candidates[0])
			}
		})
	}
}

func TestPlaceIsDeterministic(t *testing.T) {
	b := newBuilder().hosts("h", 8).vm("vm1", "h1")
	first, err := Place(b.st, "vm1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map iteration order differs between runs; the answer must not
		p, err := Place(b.st.Clone(), "vm1", nil)
		if err != nil || p.Host != first.Host || p.Reason != first.Reason {
			t.Fatalf("Place = %s (%s), %v; first %s (%s)", p.Host, p.Reason, err, first.Host, first.Reason)
		}
	}
	if first.Host != "h2" {
		t.Errorf("tie among identical hosts went to %s, want h2", first.Host)
	}
}

func TestPlaceNoHostNamesEveryHost(t *testing.T) {
	b := newBuilder().host("h1").host("h2").host("h3", memFree(100)).host("h4").host("h9", inCluster("c2"))
	b.vm("vm1", "h1")
	setState(b, "h2", fsm.HostMaintenance, "kernel update")
	_, err := Place(b.st, "vm1", []string{"h4"})
	if !errors.Is(err, ErrNoHost) {
		t.Fatalf("Place = %v, want ErrNoHost", err)
	}
	for _, want := range []string{
		"vm1", "cluster c1",
		"h1: source",
		"h2: dest-up: h2 is Maintenance (kernel update)",
		"h3: memory: h3 has 100 MiB for it",
		"h4: excluded",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "h9") {
		t.Errorf("error %q names a host of another cluster", err)
	}
}

func TestPlaceUnknownVM(t *testing.T) {
	_, err := Place(base().st, "ghost", nil)
	if !errors.Is(err, ErrUnknownVM) || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Place = %v, want ErrUnknownVM naming ghost", err)
	}
}

func TestDryRunShowsEveryHostOfTheCluster(t *testing.T) {
	b := base().host("h4", memFree(1024)).host("h5", memFree(60000)).host("h9", inCluster("c2"))
	cands := DryRun(b.st, "vm1")
	var hosts []string
	for _, c := range cands {
		hosts = append(hosts, c.Host)
		if len(c.Results) != len(checks) {
			t.Errorf("%s has %d results, want every check (%d)", c.Host, len(c.Results), len(checks))
		}
		if ok := Refusal("vm1", c.Host, c.Results) == nil; ok != c.OK {
			t.Errorf("%s OK = %v but its results say %v", c.Host, c.OK, ok)
		}
	}
	// Passing hosts first, best first; then failing ones by name.
	if want := []string{"h5", "h2", "h3", "h4"}; !slices.Equal(hosts, want) {
		t.Fatalf("DryRun hosts %v, want %v", hosts, want)
	}
	if cands[3].OK || result(t, cands[3].Results, CheckMemory).OK {
		t.Errorf("h4 should fail memory: %+v", cands[3])
	}
	if DryRun(b.st, "ghost") != nil {
		t.Errorf("DryRun of an unknown VM returned candidates")
	}
}
