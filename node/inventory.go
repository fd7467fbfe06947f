package node

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// readFacts asks the hypervisor what this host is and has, adding the
// configured networks and storage domains it cannot know.
func (n *Node) readFacts(ctx context.Context) (fsm.HostFacts, error) {
	caps, err := n.cfg.Hypervisor.Capabilities(ctx)
	if err != nil {
		return fsm.HostFacts{}, fmt.Errorf("capabilities of %s: %w", n.cfg.Name, err)
	}
	doms, err := n.cfg.Hypervisor.Domains(ctx)
	if err != nil {
		return fsm.HostFacts{}, fmt.Errorf("domains of %s: %w", n.cfg.Name, err)
	}
	used := 0
	for _, d := range doms {
		if d.State == fsm.VMRunning || d.State == fsm.VMPaused {
			used += d.VCPUs
		}
	}
	var domains []string
	for name := range n.cfg.StorageDomains {
		domains = append(domains, name)
	}
	sort.Strings(domains)
	f := fsm.HostFacts{
		Name: n.cfg.Name, Cluster: n.cfg.Cluster,
		APIAddr: n.apiLn.Addr().String(), RaftAddr: string(n.transport.LocalAddr()),
		MgmtAddr: n.cfg.BindAddr, MigrationAddr: n.cfg.MigrationAddr,
		HypervisorURI: strings.ReplaceAll(n.cfg.HypervisorURI, "{api}", n.apiLn.Addr().String()), Hypervisor: n.cfg.HypervisorKind,
		Arch: caps.Arch, CPUModel: caps.CPUModel, CPUFlags: caps.CPUFlags, CPUModels: caps.CPUModels,
		MemTotalMiB: caps.MemTotalMiB, MemFreeMiB: caps.MemFreeMiB,
		CPUs: caps.CPUs, CPUsFree: max(caps.CPUs-used, 0),
		Networks: n.cfg.Networks, StorageDomains: domains, Version: n.cfg.Version,
	}
	return f, nil
}

// vmsFrom maps hypervisor domains to replicated VMs, naming the storage
// domain of each disk by the directory its image lives under.
func (n *Node) vmsFrom(doms []migrate.Domain) []fsm.VM {
	vms := make([]fsm.VM, 0, len(doms))
	for _, d := range doms {
		vm := fsm.VM{Name: d.Name, UUID: d.UUID, Host: n.cfg.Name, MemoryMiB: d.MemoryMiB, VCPUs: d.VCPUs,
			CPUModel: d.CPUModel, CPUFlags: d.CPUFlags, NICs: d.NICs, State: d.State}
		for _, disk := range d.Disks {
			if disk.StorageDomain == "" {
				disk.StorageDomain = n.domainOf(disk.Source)
			}
			vm.Disks = append(vm.Disks, disk)
		}
		vms = append(vms, vm)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms
}

func (n *Node) domainOf(path string) string {
	best, bestLen := "", 0
	for name, dir := range n.cfg.StorageDomains {
		d := strings.TrimSuffix(dir, "/") + "/"
		if strings.HasPrefix(path, d) && len(d) > bestLen {
			best, bestLen = name, len(d)
		}
	}
	return best
}

// invHealth is what the inventory loop last saw, for readiness and metrics:
// the time of the last full read and the hypervisor's last error (nil when
// its last call succeeded). Probes read these instead of calling the
// hypervisor themselves, so a load balancer's checks never add libvirt calls.
type invHealth struct {
	lastOK atomic.Int64 // Unix nanoseconds
	hvErr  atomic.Pointer[string]
}

func (h *invHealth) ok() {
	h.lastOK.Store(time.Now().UnixNano())
	h.hvErr.Store(nil)
}

func (h *invHealth) failed(err error) {
	msg := err.Error()
	h.hvErr.Store(&msg)
}

// inventoryLoop keeps gossip facts and the replicated VM list in step with
// the hypervisor. It proposes SyncVMs only when the list differs.
func (n *Node) inventoryLoop() {
	tick := time.NewTicker(n.cfg.InventoryInterval)
	defer tick.Stop()
	for {
		n.syncInventory(n.ctx)
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) syncInventory(ctx context.Context) {
	facts, err := n.readFacts(ctx)
	if err != nil {
		n.inv.failed(err)
		n.log.Warn("read facts", "err", err)
		return
	}
	n.factsMu.Lock()
	if !reflect.DeepEqual(facts, n.facts) {
		n.facts = facts
		n.gossip.Update(facts)
	}
	n.factsMu.Unlock()
	doms, err := n.cfg.Hypervisor.Domains(ctx)
	if err != nil {
		n.inv.failed(err)
		n.log.Warn("read domains", "err", err)
		return
	}
	n.inv.ok()
	all := n.vmsFrom(doms)
	var vms, cur []fsm.VM
	known := false
	n.fsm.Read(func(s *fsm.State) {
		_, known = s.Hosts[n.cfg.Name]
		for _, v := range all {
			// A VM the state places on another live host (an incoming
			// migration) is that host's to report; SyncVMs would skip it.
			if e := s.VMs[v.Name]; e != nil && e.Host != n.cfg.Name {
				if h := s.Hosts[e.Host]; e.Migration != "" || (h != nil && h.State != fsm.HostDown && h.State != fsm.HostLeft) {
					continue
				}
			}
			vms = append(vms, v)
		}
		for _, vm := range s.VMsOn(n.cfg.Name) {
			v := *vm
			v.Migration = ""
			cur = append(cur, v)
		}
	})
	if !known || sameVMs(cur, vms) {
		return
	}
	if _, err := n.propose(ctx, fsm.CmdSyncVMs, fsm.SyncVMs{Host: n.cfg.Name, VMs: vms}); err != nil {
		n.log.Debug("sync VMs", "err", err)
	}
}

func sameVMs(a, b []fsm.VM) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(normVM(a[i]), normVM(b[i])) {
			return false
		}
	}
	return true
}

// normVM makes nil and empty slices compare equal.
func normVM(v fsm.VM) fsm.VM {
	if len(v.CPUFlags) == 0 {
		v.CPUFlags = nil
	}
	if len(v.NICs) == 0 {
		v.NICs = nil
	}
	if len(v.Disks) == 0 {
		v.Disks = nil
	}
	return v
}
