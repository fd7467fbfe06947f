package gossip

import (
	"testing"
	"time"
)

// TestBootStateReachesPeers: what a host says about its bootstrap (explicit
// bootstrap's expectation, being in a mesh) is seen by every peer, from the
// first metadata on and after a change.
func TestBootStateReachesPeers(t *testing.T) {
	cfg := testConfig("h00")
	cfg.Boot = Boot{Expect: 3}
	a := startAgent(t, cfg, testFacts("h00"))
	b := startAgent(t, testConfig("h01"), testFacts("h01"))
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	bootOf := func(x *Agent, host string) Boot { m, _ := x.Member(host); return m.Boot }
	waitFor(t, convergeTimeout, "h01 sees h00 expecting 3", func() bool { return bootOf(b, "h00") == Boot{Expect: 3} })
	if got := bootOf(a, "h00"); got != (Boot{Expect: 3}) {
		t.Errorf("h00 sees itself as %+v", got)
	}
	a.SetBoot(Boot{Expect: 3, InMesh: true})
	took := waitFor(t, 5*time.Second, "h01 sees h00 in a mesh", func() bool { return bootOf(b, "h00").InMesh })
	t.Logf("boot change reached the peer in %v", took)
	if got := bootOf(a, "h01"); got != (Boot{}) {
		t.Errorf("h00 sees h01 as %+v, want nothing", got)
	}
}
