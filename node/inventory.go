package node

import (
	"context"
	"fmt"
	"reflect"
	"slices"
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
	nets, _ := n.res.get()
	domains := n.res.domainNames()
	f := fsm.HostFacts{
		Name: n.cfg.Name, Cluster: n.cfg.Cluster,
		APIAddr: n.apiLn.Addr().String(), RaftAddr: string(n.transport.LocalAddr()),
		MgmtAddr: n.cfg.BindAddr, MigrationAddr: n.cfg.MigrationAddr,
		HypervisorURI: strings.ReplaceAll(n.cfg.HypervisorURI, "{host}", n.RaftAddr()), Hypervisor: n.cfg.HypervisorKind,
		Arch: caps.Arch, CPUModel: caps.CPUModel, CPUFlags: caps.CPUFlags, CPUModels: caps.CPUModels,
		MemTotalMiB: caps.MemTotalMiB, MemFreeMiB: caps.MemFreeMiB, MemReservedMiB: caps.MemReservedMiB,
		CPUs: caps.CPUs, CPUsFree: max(caps.CPUs-used, 0),
		Networks: nets, StorageDomains: domains, Version: n.cfg.Version,
	}
	f.CPUXML, f.CPUVerdicts = n.cpuFacts(ctx)
	return f, nil
}

// vmsFrom maps hypervisor domains to replicated VMs, naming the storage
// domain of each disk by the directory its image lives under.
func (n *Node) vmsFrom(doms []migrate.Domain) []fsm.VM {
	vms := make([]fsm.VM, 0, len(doms))
	var refused []string
	for _, d := range doms {
		vm := fsm.VM{Name: d.Name, UUID: d.UUID, Host: n.cfg.Name, MemoryMiB: d.MemoryMiB, VCPUs: d.VCPUs,
			CPUModel: d.CPUModel, CPUFlags: d.CPUFlags, CPUXML: d.CPUXML, NICs: d.NICs, HostDevices: d.HostDevices, State: d.State}
		for _, disk := range d.Disks {
			if disk.StorageDomain == "" {
				disk.StorageDomain = n.domainOf(disk.Source)
			}
			vm.Disks = append(vm.Disks, disk)
		}
		// One guest the state cannot hold (65 disks, a 300-byte name) would
		// get the whole inventory refused, every VM of this host stale: it
		// is left out, and said so.
		if err := fsm.CheckVM(vm); err != nil {
			refused = append(refused, err.Error())
			continue
		}
		vms = append(vms, vm)
	}
	n.inv.refusedVMs(n, refused)
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms
}

func (n *Node) domainOf(path string) string {
	best, bestLen := "", 0
	_, domains := n.res.get()
	for name, dir := range domains {
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
	// refused lists the guests last left out of the inventory, and why.
	refused atomic.Pointer[string]
}

func (h *invHealth) ok() {
	h.lastOK.Store(time.Now().UnixNano())
	h.hvErr.Store(nil)
}

// refusedVMs logs the guests left out of the inventory when that list
// changes (not at every read).
func (h *invHealth) refusedVMs(n *Node, refused []string) {
	msg := strings.Join(refused, "; ")
	if prev := h.refused.Swap(&msg); prev != nil && *prev == msg || prev == nil && msg == "" {
		return
	}
	if msg != "" {
		n.log.Warn("guests left out of the inventory: the mesh cannot hold them", "vms", len(refused), "why", msg)
	}
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
		case <-n.res.kick:
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
	// What this replica had applied before it read the hypervisor: the
	// FSM ignores what the report says about a VM moved after that.
	index := n.fsm.Index()
	doms, err := n.cfg.Hypervisor.Domains(ctx)
	if err != nil {
		n.inv.failed(err)
		n.log.Warn("read domains", "err", err)
		return
	}
	n.inv.ok()
	all := n.vmsFrom(doms)
	var report, compare, cur []fsm.VM
	known, retract := false, false
	n.fsm.Read(func(s *fsm.State) {
		_, known = s.Hosts[n.cfg.Name]
		report, compare, retract = inventoryReport(s, n.cfg.Name, all)
		for _, vm := range s.VMsOn(n.cfg.Name) {
			cur = append(cur, *vm)
		}
	})
	if !known || (sameVMs(cur, compare) && !retract) {
		return
	}
	if _, err := n.propose(ctx, fsm.CmdSyncVMs, fsm.SyncVMs{Host: n.cfg.Name, VMs: report, Index: index, At: time.Now().UTC()}); err != nil {
		n.log.Debug("sync VMs", "err", err)
	}
}

// inventoryReport chooses what host reports of the domains it runs, and
// what of that the state should already show (when it does, nothing is
// proposed). A VM an incoming migration holds is its source's until the
// Finish, and a copy of a VM recorded on another live host is reported
// only when both copies run: a split brain, which the FSM records as an
// alarm (a shut-off copy is a leftover, not a second run). A claim the
// state already records is reported again, or the FSM would take it back,
// but is not a reason to propose; a recorded claim on a copy that stopped
// running here is (retract).
func inventoryReport(s *fsm.State, host string, all []fsm.VM) (report, compare []fsm.VM, retract bool) {
	running := map[string]bool{}
	for _, v := range all {
		running[v.Key()] = runs(v.State)
	}
	for _, a := range s.Alarms {
		if a.Kind == fsm.AlarmSplitBrain && slices.Contains(a.Hosts, host) && !running[a.VMUUID] {
			retract = true
		}
	}
	for _, v := range all {
		k := v.Key()
		if e := s.VMs[k]; e != nil && e.Host != host {
			if e.Migration != "" {
				continue
			}
			if h := s.Hosts[e.Host]; h != nil && h.State != fsm.HostDown && h.State != fsm.HostLeft {
				if !runs(v.State) || !runs(e.State) {
					continue
				}
				report = append(report, v)
				if a := s.SplitBrain(k); a == nil || !slices.Contains(a.Hosts, host) {
					compare = append(compare, v)
				}
				continue
			}
		}
		report = append(report, v)
		compare = append(compare, v)
	}
	return report, compare, retract
}

// runs reports whether a VM in state st runs (paused guests included).
func runs(st string) bool { return st == fsm.VMRunning || st == fsm.VMPaused }

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

// normVM makes nil and empty slices compare equal, and drops what only
// the state knows (the holding migration, the index of the last move).
func normVM(v fsm.VM) fsm.VM {
	v.Migration, v.MovedIndex = "", 0
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
