package node

import (
	"maps"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hostmesh/hostmesh/fsm"
)

func TestMergeFacts(t *testing.T) {
	cNets := []fsm.Network{{Name: "ovirtmgmt"}, {Name: "vmnet", VLAN: 100}}
	cDoms := map[string]string{"data1": "/rhev/data1"}
	dNets := []fsm.Network{{Name: "br-vm"}, {Name: "vmnet", VLAN: 100}, {Name: "vmnet", VLAN: 120}}
	dDoms := map[string]string{"nfs1": "/srv/nfs1", "data1": "/mnt/other", "alias": "/rhev/data1/"}

	nets, doms := mergeFacts(FactsMerge, cNets, cDoms, dNets, dDoms)
	want := []fsm.Network{{Name: "ovirtmgmt"}, {Name: "vmnet", VLAN: 100}, {Name: "br-vm"}, {Name: "vmnet", VLAN: 120}}
	if !reflect.DeepEqual(nets, want) {
		t.Errorf("merged networks %v, want %v (configured first, each once)", nets, want)
	}
	// The operator's name for a directory wins: a disk maps to one domain.
	if wantD := map[string]string{"data1": "/rhev/data1", "nfs1": "/srv/nfs1"}; !maps.Equal(doms, wantD) {
		t.Errorf("merged domains %v, want %v", doms, wantD)
	}
	nets, doms = mergeFacts(FactsDiscovered, cNets, cDoms, dNets, dDoms)
	if !reflect.DeepEqual(nets, dNets) || !maps.Equal(doms, dDoms) {
		t.Errorf("discovered mode: %v %v", nets, doms)
	}
	nets, doms = mergeFacts(FactsConfigured, cNets, cDoms, dNets, dDoms)
	if !reflect.DeepEqual(nets, cNets) || !maps.Equal(doms, cDoms) {
		t.Errorf("configured mode: %v %v", nets, doms)
	}
}

func TestResourcesOfferConfiguredUntilDiscovered(t *testing.T) {
	var r resources
	r.init([]fsm.Network{{Name: "a"}}, nil, FactsDiscovered)
	if nets, _ := r.get(); len(nets) != 1 || nets[0].Name != "a" {
		t.Fatalf("before a discovery: %v, want the configured a", nets)
	}
	added, removed, changed := r.setDiscovered([]fsm.Network{{Name: "b"}, {Name: "b", VLAN: 7}}, map[string]string{})
	if !changed || !reflect.DeepEqual(added, []string{"b", "b.7"}) || len(removed) != 0 {
		t.Fatalf("first discovery: added %v removed %v changed %v", added, removed, changed)
	}
	if nets, _ := r.get(); len(nets) != 2 || nets[0].Name != "b" {
		t.Fatalf("discovered mode after a discovery: %v", nets)
	}
	if _, _, changed := r.setDiscovered([]fsm.Network{{Name: "b"}, {Name: "b", VLAN: 7}}, map[string]string{}); changed {
		t.Errorf("the same discovery again reported a change")
	}
	_, removed, _ = r.setDiscovered([]fsm.Network{{Name: "b"}}, map[string]string{})
	if !reflect.DeepEqual(removed, []string{"b.7"}) {
		t.Errorf("removed %v, want b.7", removed)
	}
}

// TestHostLinksReadsThisNamespace: the loopback is neither a bridge nor a
// VLAN, and the call works without libvirt.
func TestHostLinksReadsThisNamespace(t *testing.T) {
	nets, err := hostLinks()
	if err != nil {
		t.Fatal(err)
	}
	for _, nw := range nets {
		if nw.Name == "lo" {
			t.Errorf("hostLinks offers the loopback: %v", nets)
		}
	}
}

// TestLinkNets: bridges and VLAN links become networks, from a netlink
// listing as LinkList returns it (this machine's kernel has no 8021q to
// make a real VLAN link: `ip link add link v0 name v0.10 type vlan id 10`
// answers "Error: Unknown device type."; the lab test adds a bridge and a
// libvirt network instead).
func TestLinkNets(t *testing.T) {
	la := func(name string, index, parent int) netlink.LinkAttrs {
		return netlink.LinkAttrs{Name: name, Index: index, ParentIndex: parent}
	}
	links := []netlink.Link{
		&netlink.Device{LinkAttrs: la("lo", 1, 0)},
		&netlink.Device{LinkAttrs: la("eth0", 2, 0)},
		&netlink.Bridge{LinkAttrs: la("vmnet", 3, 0)},
		&netlink.Vlan{LinkAttrs: la("vmnet.100", 4, 3), VlanId: 100},
		&netlink.Vlan{LinkAttrs: la("eth0.7", 5, 2), VlanId: 7},
		&netlink.Veth{LinkAttrs: la("veth0", 6, 0)},
	}
	got := sortedNets(linkNets(links))
	want := []fsm.Network{{Name: "eth0", VLAN: 7}, {Name: "eth0.7"}, {Name: "vmnet"}, {Name: "vmnet", VLAN: 100}, {Name: "vmnet.100"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("linkNets = %v, want %v", got, want)
	}
}
