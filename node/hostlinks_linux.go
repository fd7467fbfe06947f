package node

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/hostmesh/hostmesh/fsm"
)

// hostLinks lists the networks this host's links offer guests: every Linux
// bridge (a NIC with <source bridge='B'/>), and every VLAN link P.N as
// network P with VLAN N (a NIC on P tagged N, or README's `vmnet.100`)
// and by its own name (a NIC attached to it directly). Read over netlink
// in meshd's own network namespace, as VDSM's netinfo does: libvirt's
// interface driver reads udev and sysfs, which in a container or a lab
// host show another namespace's links.
func hostLinks() ([]fsm.Network, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netlink: list links: %w", err)
	}
	return linkNets(links), nil
}

// linkNets maps links to the networks they offer (see hostLinks).
func linkNets(links []netlink.Link) []fsm.Network {
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var nets []fsm.Network
	for _, l := range links {
		switch v := l.(type) {
		case *netlink.Bridge:
			nets = append(nets, fsm.Network{Name: v.Attrs().Name})
		case *netlink.Vlan:
			nets = append(nets, fsm.Network{Name: v.Attrs().Name})
			if parent := names[v.Attrs().ParentIndex]; parent != "" && v.VlanId > 0 {
				nets = append(nets, fsm.Network{Name: parent, VLAN: v.VlanId})
			}
		}
	}
	return nets
}
