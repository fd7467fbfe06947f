// The checks that the destination fits the VM: its networks and VLANs,
// storage domains, free memory and CPUs, CPU model and flags, and the
// disks' cache modes.

package migrate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// netName renders a network with its VLAN, which matters as much as its name:
// the same bridge on another VLAN puts the guest on another segment.
func netName(n fsm.Network) string {
	if n.VLAN == 0 {
		return n.Name
	}
	return fmt.Sprintf("%s VLAN %d", n.Name, n.VLAN)
}

func checkNetworks(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, true); m != "" {
		return false, m
	}
	var need, lack []string
	for _, nic := range c.vm.NICs {
		n := fsm.Network{Name: nic.Network, VLAN: nic.VLAN}
		if slices.Contains(need, netName(n)) {
			continue
		}
		need = append(need, netName(n))
		if !slices.Contains(c.dst.Networks, n) {
			lack = append(lack, netName(n))
		}
	}
	if len(lack) > 0 {
		has := make([]string, len(c.dst.Networks))
		for i, n := range c.dst.Networks {
			has[i] = netName(n)
		}
		return false, fmt.Sprintf("%s lacks %s needed by vm %s (it has: %s)",
			c.dstName, strings.Join(lack, ", "), c.vmName, listOrNone(has))
	}
	if len(need) == 0 {
		return true, fmt.Sprintf("vm %s has no NICs", c.vmName)
	}
	return true, fmt.Sprintf("%s has %s", c.dstName, strings.Join(need, ", "))
}

// checkStorage passes disks with no storage domain: they are local to the
// source and the migration copies them live (Params.CopyStorage).
func checkStorage(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, true); m != "" {
		return false, m
	}
	var seen, lack, local []string
	for _, d := range c.vm.Disks {
		switch {
		case d.StorageDomain == "":
			local = append(local, d.Target)
		case !slices.Contains(c.dst.StorageDomains, d.StorageDomain):
			lack = append(lack, fmt.Sprintf("%s (disk %s)", d.StorageDomain, d.Target))
		case !slices.Contains(seen, d.StorageDomain):
			seen = append(seen, d.StorageDomain)
		}
	}
	if len(lack) > 0 {
		return false, fmt.Sprintf("%s does not see storage domain %s", c.dstName, strings.Join(lack, ", "))
	}
	msg := fmt.Sprintf("%s sees %s", c.dstName, listOrNone(seen))
	if len(seen) == 0 {
		msg = fmt.Sprintf("vm %s uses no shared storage domain", c.vmName)
	}
	if len(local) > 0 {
		msg += fmt.Sprintf("; local disk %s will be copied live", strings.Join(local, ", "))
	}
	return true, msg
}

// incoming sums the memory and counts the migrations headed to host: every
// Running one, and the Queued ones ahead of own in the queue (all of them
// when own is ""). Queued migrations behind own do not count: own has
// priority over them, and counting them would let two pinned migrations to
// a tight host refuse each other.
func incoming(st *fsm.State, host, own string) (mib uint64, n int) {
	behind := false
	for _, id := range st.Queue {
		if id == own {
			behind = true
			continue
		}
		m := st.Migrations[id]
		if m == nil || m.Dest != host || m.State.Final() || (behind && m.State == fsm.MigQueued) {
			continue
		}
		if vm := st.VMOf(m); vm != nil {
			mib += vm.MemoryMiB
		}
		n++
	}
	return mib, n
}

// memRoom is the memory a host can still give a VM, counted once (issue
// 10): the free memory its hypervisor reports, plus what the hypervisor
// already holds for incoming migrations (MemFreeMiB excludes it, and
// those migrations are in the incoming sum), minus every migration headed
// there. So free memory, reservations and placed VMs add up to what the
// hypervisor reports. A reservation beyond the incoming sum (one the state
// does not know of) is not added back.
type memRoom struct {
	room, free, reserved, incoming uint64
}

func roomOn(st *fsm.State, h *fsm.Host, host, own string) memRoom {
	inc, _ := incoming(st, host, own)
	r := memRoom{free: h.MemFreeMiB, reserved: min(h.MemReservedMiB, inc), incoming: inc}
	if avail := r.free + r.reserved; avail > inc {
		r.room = avail - inc
	}
	return r
}

func checkMemory(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, true); m != "" {
		return false, m
	}
	r := roomOn(c.st, c.dst, c.dstName, c.own)
	msg := fmt.Sprintf("%s has %d MiB for it (%d MiB free, plus %d held for and minus %d of migrations headed there), vm %s needs %d MiB",
		c.dstName, r.room, r.free, r.reserved, r.incoming, c.vmName, c.vm.MemoryMiB)
	return r.room >= c.vm.MemoryMiB, msg
}

// checkCPU allows overcommit (vCPUs beyond free CPUs) but not a guest wider
// than the host; free CPUs are reported for the operator's judgement.
func checkCPU(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, true); m != "" {
		return false, m
	}
	msg := fmt.Sprintf("%s has %d CPUs (%d free), vm %s needs %d vCPUs",
		c.dstName, c.dst.CPUs, c.dst.CPUsFree, c.vmName, c.vm.VCPUs)
	return c.dst.CPUs >= c.vm.VCPUs, msg
}

// checkCPUModel asks the destination's libvirt: a VM whose domain XML has a
// <cpu> definition is judged by the verdict the destination gossiped for
// that definition (virConnectCompareHypervisorCPU on the destination, see
// fsm/cpu.go), which names the features the destination lacks. The check
// runs on every replica from the state, so it reads the destination's
// answer from there rather than calling it. Where there is no definition
// (a guest with libvirt's default CPU) or the destination has not answered
// yet (it compares each new definition within a facts interval), the
// check falls back to flag lists: same architecture, every CPU flag the VM
// requires present on the destination, and a named model the destination
// reports or lists as usable. libvirt itself refuses an incompatible CPU
// when the migration starts, so the fallback is never the last guard.
func checkCPUModel(c *checkCtx) (bool, string) {
	if m := c.missing(true, true, true); m != "" {
		return false, m
	}
	var problems []string
	if c.src.Arch != c.dst.Arch {
		problems = append(problems, fmt.Sprintf("arch %q on %s but %q on %s", c.src.Arch, c.srcName, c.dst.Arch, c.dstName))
	}
	dig := fsm.CPUDigest(c.vm.CPUXML)
	if v, ok := c.dst.CPUVerdictFor(dig); ok {
		if !v.OK {
			v, srcLacks := beyondSource(v, c.src, dig)
			if v.OK {
				if len(problems) > 0 {
					return false, strings.Join(problems, "; ")
				}
				return true, fmt.Sprintf("%s lacks only what %s lacks too of vm %s's CPU (%s: %s), which the guest therefore does not use",
					c.dstName, c.srcName, c.vmName, orDefault(c.vm.CPUModel), strings.Join(srcLacks, ", "))
			}
			problems = append(problems, fmt.Sprintf("%s %s required by vm %s (CPU %s, compared by %s's libvirt)",
				c.dstName, v.Explain(), c.vmName, orDefault(c.vm.CPUModel), c.dstName))
			return false, strings.Join(problems, "; ")
		}
		if len(problems) > 0 {
			return false, strings.Join(problems, "; ")
		}
		return true, fmt.Sprintf("%s's libvirt runs vm %s's CPU (%s)", c.dstName, c.vmName, orDefault(c.vm.CPUModel))
	}
	var lack []string
	for _, f := range c.vm.CPUFlags {
		if !slices.Contains(c.dst.CPUFlags, f) {
			lack = append(lack, f)
		}
	}
	if len(lack) > 0 {
		problems = append(problems, fmt.Sprintf("%s lacks CPU flag %s required by vm %s", c.dstName, strings.Join(lack, ", "), c.vmName))
	}
	if !canRunModel(c.vm.CPUModel, c.src, c.dst) {
		problems = append(problems, fmt.Sprintf("vm %s uses CPU model %s, which %s (%s) cannot run (it runs %s)",
			c.vmName, c.vm.CPUModel, c.dstName, c.dst.CPUModel, strings.Join(c.dst.CPUModels, ", ")))
	}
	if len(problems) > 0 {
		return false, strings.Join(problems, "; ")
	}
	msg := fmt.Sprintf("arch %s, %d required CPU flags present on %s", c.dst.Arch, len(c.vm.CPUFlags), c.dstName)
	if c.vm.CPUModel != "" {
		msg += ", model " + c.vm.CPUModel
	}
	if c.vm.CPUXML != "" {
		msg += " (flag lists: " + c.dstName + " has not compared this CPU yet)"
	}
	return true, msg
}

// beyondSource keeps of a destination's missing features those the
// source offers. A guest runs on its source, so it has at most what the
// source's CPU gives: a feature its definition asks for that the source
// lacks too is one it does not have (QEMU under TCG starts such a guest
// and leaves the feature out; libvirt on KVM would not have started it).
// Refusing the move for it would refuse every move of that guest. The
// verdict turns OK when nothing is left; srcLacks is what was dropped.
func beyondSource(v fsm.CPUVerdict, src *fsm.Host, dig string) (fsm.CPUVerdict, []string) {
	sv, ok := src.CPUVerdictFor(dig)
	if !ok || sv.OK || len(v.Missing) == 0 || len(sv.Missing) == 0 {
		return v, nil
	}
	var keep, dropped []string
	for _, f := range v.Missing {
		if slices.Contains(sv.Missing, f) {
			dropped = append(dropped, f)
		} else {
			keep = append(keep, f)
		}
	}
	if len(keep) == 0 {
		return fsm.CPUVerdict{Digest: v.Digest, OK: true}, dropped
	}
	v.Missing = keep
	return v, dropped
}

// CPURunsOn says whether dst's libvirt runs the VM's CPU definition, by
// dst's verdict less what the VM's own host lacks too (beyondSource);
// known is false when dst has no verdict on it (or the VM has no <cpu>).
func CPURunsOn(st *fsm.State, vm *fsm.VM, dst *fsm.Host) (ok, known bool) {
	dig := fsm.CPUDigest(vm.CPUXML)
	v, known := dst.CPUVerdictFor(dig)
	if !known || v.OK {
		return known && v.OK, known
	}
	if src := st.Hosts[vm.Host]; src != nil {
		v, _ = beyondSource(v, src, dig)
	}
	return v.OK, true
}

func orDefault(model string) string {
	if model == "" {
		return "default model"
	}
	return model
}

// canRunModel says whether dst can run a guest CPU model: it is the
// destination's own model, or one it lists as usable, or the two hosts have
// the same CPU (then whatever runs on the source runs on the destination).
// A guest with no named model gets the hypervisor's default (libvirt's live
// XML says qemu64), so requiring equality with the host model would refuse
// every plain guest even between identical hosts.
func canRunModel(model string, src, dst *fsm.Host) bool {
	return model == "" || model == dst.CPUModel || slices.Contains(dst.CPUModels, model) ||
		(src.CPUModel != "" && src.CPUModel == dst.CPUModel && slices.Equal(src.CPUFlags, dst.CPUFlags))
}

// checkCacheMode mirrors libvirt's own refusal: a disk cache other than none or
// directsync may lose writes at switch-over. The mesh runs this check itself so
// it can pass Params.Unsafe and still never corrupt data. An empty cache is the
// hypervisor default (writeback) and is refused too.
func checkCacheMode(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	var bad []string
	for _, d := range c.vm.Disks {
		switch d.Cache {
		case "none", "directsync":
		case "":
			bad = append(bad, d.Target+" (default, writeback)")
		default:
			bad = append(bad, d.Target+" ("+d.Cache+")")
		}
	}
	if len(bad) > 0 {
		return false, fmt.Sprintf("vm %s disk %s uses a cache other than none or directsync; migration may corrupt data",
			c.vmName, strings.Join(bad, ", "))
	}
	return true, fmt.Sprintf("all %d disks of vm %s use cache none or directsync", len(c.vm.Disks), c.vmName)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
