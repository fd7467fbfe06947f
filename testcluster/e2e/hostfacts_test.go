package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestHostFactsDiscoveredWithoutRestart: a guest on a bridge only h1 has
// is refused a move to h2 (networks check); then the bridge and a libvirt
// network on it are added on h2, meshd on h2 (never restarted, never sent
// a signal) discovers them and gossips them, and the same migration is
// accepted and moves the guest live. (This machine's kernel has no 8021q:
// a VLAN link cannot be made here, so the network added is a bridge and a
// libvirt network; node.TestLinkNets covers VLAN links. Checked on
// 2026-11-28, kernel 6.18.44, CONFIG_VLAN_8021Q not set, built in or as a
// module: in a fresh netns, `ip link add link v0 name v0.10 type vlan id
// 10` on a veth answers "Error: Unknown device type.", and a bridge's
// vlan_filtering "Operation not supported".)
func TestHostFactsDiscoveredWithoutRestart(t *testing.T) {
	m := sharedMesh(t)
	h1, h2 := m.lab.Hosts[0], m.lab.Hosts[1]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const bridge, network = "br-facts", "factsnet"
	for _, h := range []*lab.Host{h1, h2} {
		h := h
		t.Cleanup(func() { _, _ = h.Run(context.Background(), "ip", "link", "del", bridge) })
	}
	t.Cleanup(func() {
		_, _ = h2.Virsh(context.Background(), "net-destroy", network)
		_, _ = h2.Virsh(context.Background(), "net-undefine", network)
	})
	addBridge := func(h *lab.Host) {
		t.Helper()
		for _, args := range [][]string{{"link", "add", bridge, "type", "bridge"}, {"link", "set", bridge, "up"}} {
			if out, err := h.Run(ctx, "ip", args...); err != nil {
				t.Fatalf("ip %s on %s: %v: %s", strings.Join(args, " "), h.Name, err, out)
			}
		}
	}
	addBridge(h1)
	m.bootGuest(t, ctx, h1, lab.GuestSpec{Name: "factsvm", MemoryMiB: 128, Bridge: bridge})
	m.assertRefused(t, ctx, "factsvm", "h1", "h2", migrate.CheckNetworks)

	pid := m.procs[h2.Name].Pid
	// The bridge, and a libvirt network on it, added on h2 as an admin
	// would: no meshd flag, no reload.
	addBridge(h2)
	xml := filepath.Join(m.lab.SharedDir, network+".xml")
	if err := os.WriteFile(xml, []byte("<network><name>"+network+"</name><forward mode='bridge'/><bridge name='"+bridge+"'/></network>"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(xml) })
	for _, args := range [][]string{{"net-define", xml}, {"net-start", network}} {
		if out, err := h2.Virsh(ctx, args...); err != nil {
			t.Fatalf("virsh %s on h2: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	added := time.Now()
	var nets []api.Network
	err := testcluster.Poll(90*time.Second, 500*time.Millisecond, func() bool {
		var hosts []api.HostView
		if m.ctlJSON(ctx, &hosts, "hosts") != nil {
			return false
		}
		for _, h := range hosts {
			if h.Name == h2.Name {
				nets = h.Networks
			}
		}
		return slices.Contains(nets, api.Network{Name: bridge}) && slices.Contains(nets, api.Network{Name: network})
	})
	if err != nil {
		t.Fatalf("h2's gossiped networks %v never got %s and %s: %v", nets, bridge, network, err)
	}
	t.Logf("h2 gossiped %s and %s %s after they were added: %v", bridge, network, time.Since(added).Round(100*time.Millisecond), nets)
	// The configured network stays (merge).
	if !slices.Contains(nets, api.Network{Name: lab.VMBridge}) {
		t.Errorf("h2 lost its configured network %s: %v", lab.VMBridge, nets)
	}
	// Same process, never restarted.
	if m.procs[h2.Name].Pid != pid || syscall.Kill(pid, 0) != nil {
		t.Fatalf("meshd on h2 (pid %d) is not the one running before", pid)
	}
	if b, _ := os.ReadFile(m.meshdLog(h2)); !strings.Contains(string(b), "host facts discovered") {
		t.Errorf("meshd on h2 did not log the discovery")
	}

	// The migration refused before is accepted now.
	mv := m.migrateWait(t, ctx, "factsvm", "--to", h2.Name)
	t.Logf("factsvm moved h1 → h2 in %s, downtime %s", mv.total, mv.downtime)
	m.waitVM(t, ctx, "factsvm", h2.Name)
}
