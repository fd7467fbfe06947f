package virt

import (
	"context"
	"sort"

	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/hostmesh/hostmesh/fsm"
)

// HostResources reports what this host's libvirt offers guests, for the
// host facts meshd gossips (node.FactsSource): every active libvirt
// network (a NIC with <source network='N'/> needs N), and every active
// storage pool that is shared, by the directory its images live under. A
// pool is shared when its kind says so (netfs: an NFS or CIFS export), or
// when it is a directory on a network file system; a dir pool on a local
// disk (libvirt's "default") is not a storage domain: its images exist on
// this host only, and naming it a domain would let a migration skip
// copying them.
func (h *Hypervisor) HostResources(ctx context.Context) ([]fsm.Network, map[string]string, error) {
	nets, err := h.conn.ListAllNetworks(libvirt.CONNECT_LIST_NETWORKS_ACTIVE)
	if err != nil {
		return nil, nil, wrap(err, "list libvirt networks of %s", h.uri)
	}
	var out []fsm.Network
	for i := range nets {
		name, err := nets[i].GetName()
		_ = nets[i].Free()
		if err != nil {
			return nil, nil, wrap(err, "libvirt network of %s", h.uri)
		}
		out = append(out, fsm.Network{Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	pools, err := h.conn.ListAllStoragePools(libvirt.CONNECT_LIST_STORAGE_POOLS_ACTIVE)
	if err != nil {
		return nil, nil, wrap(err, "list storage pools of %s", h.uri)
	}
	domains := map[string]string{}
	for i := range pools {
		doc, err := pools[i].GetXMLDesc(0)
		_ = pools[i].Free()
		if err != nil {
			return nil, nil, wrap(err, "storage pool of %s", h.uri)
		}
		var p libvirtxml.StoragePool
		if err := p.Unmarshal(doc); err != nil {
			return nil, nil, wrap(err, "storage pool XML of %s", h.uri)
		}
		if p.Target == nil || p.Target.Path == "" || !sharedPool(p.Type, p.Target.Path) {
			continue
		}
		domains[p.Name] = p.Target.Path
	}
	return out, domains, ctx.Err()
}

// Magic numbers of network file systems (statfs(2)).
var networkFS = map[int64]bool{
	0x6969:     true, // NFS
	0xFF534D42: true, // CIFS
	0xFE534D42: true, // SMB2
	0x00C36400: true, // CephFS
	0x47504653: true, // GPFS
	0x0BD00BD0: true, // Lustre
}

func sharedPool(kind, path string) bool {
	switch kind {
	case "netfs":
		return true
	case "dir", "fs":
		var st unix.Statfs_t
		return unix.Statfs(path, &st) == nil && networkFS[int64(st.Type)]
	}
	return false
}
