package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// The cluster CPU baseline (fsm/cpu.go), as oVirt's cluster CPU type and
// VMware's EVC mode. Three parts, each on the host that can answer:
//
//   - every host gossips its CPU definition (libvirt's host-model CPU) and
//     its own libvirt's verdicts on the cluster's baseline and on each
//     distinct guest CPU of its cluster (cpuFacts);
//   - the leader computes the baseline once, when the cluster has none, from
//     the definitions of the cluster's live hosts with
//     virConnectBaselineHypervisorCPU (MIGRATABLE), on its own libvirt
//     (reconcileCPUBaseline);
//   - a host whose verdict on the baseline is "incompatible" is
//     NonOperational, the missing features named (hostHealth), and the
//     cpu-model check reads the destination's verdict on the VM's CPU.
//
// When it is recomputed: as EVC, it is not lowered under running guests.
// A host that joins with a weaker CPU lowers an automatic baseline only
// when its libvirt runs the CPU of every running guest of the cluster
// (admits: nothing a guest uses is dropped; this is also how a cluster
// forming host by host settles); otherwise it is NonOperational until an
// operator decides, with
// `meshctl cluster C --cpu-baseline recompute` (POST
// /v1/clusters/C/cpu-baseline), which recomputes from the live hosts (the
// weak one included) and records the features it drops in the event. A
// host that leaves does not raise it either, so the host coming back from
// maintenance is not locked out. Running guests are not affected by a
// lowered baseline: each keeps its own CPU, and the cpu-model check
// compares that CPU, not the baseline, with every destination.

// cpuCache remembers this host's verdicts by definition digest, for the
// host CPU they were made against: libvirt is asked once per definition.
type cpuCache struct {
	mu      sync.Mutex
	hostCPU string
	byDig   map[string]fsm.CPUVerdict
}

func (c *cpuCache) get(hostCPU, dig string) (fsm.CPUVerdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hostCPU != hostCPU {
		c.hostCPU, c.byDig = hostCPU, map[string]fsm.CPUVerdict{}
	}
	v, ok := c.byDig[dig]
	return v, ok
}

func (c *cpuCache) put(hostCPU, dig string, v fsm.CPUVerdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hostCPU == hostCPU {
		if len(c.byDig) > 4*fsm.MaxCPUVerdicts {
			clear(c.byDig)
		}
		c.byDig[dig] = v
	}
}

// cpuFacts returns this host's CPU definition and its verdicts on the
// definitions its cluster uses: the baseline first, then the guests' CPUs
// by digest, at most fsm.MaxCPUVerdicts. A hypervisor that cannot define
// CPUs, or fails to, gives none (the checks fall back to flag lists).
func (n *Node) cpuFacts(ctx context.Context) (string, []fsm.CPUVerdict) {
	def, ok := n.cfg.Hypervisor.(migrate.CPUDefiner)
	if !ok {
		return "", nil
	}
	hostCPU, err := def.HostCPU(ctx)
	if err != nil || len(hostCPU) > fsm.MaxCPUXML {
		n.log.Debug("host CPU definition", "err", err)
		return "", nil
	}
	// The distinct guest CPUs are few (guests share a handful of models)
	// and the VMs many (50 a host, every host of the mesh), and this runs
	// on every host every inventory pass: each VM's definition was hashed
	// while the read lock was held, 10,000 SHA-256 every 2 s per host in a
	// 200-host mesh, the largest hostmesh cost in the profile of its
	// hosts while hosts joined. The state's index gives each host's
	// distinct definitions (State.GuestCPUs), so the pass reads a few per
	// host of the cluster, not every VM, and hashes after the lock.
	var baseline string
	distinct := map[string]struct{}{}
	n.fsm.Read(func(s *fsm.State) {
		if cl := s.Clusters[n.cfg.Cluster]; cl != nil {
			baseline = cl.CPUBaselineXML
		}
		for name, h := range s.Hosts {
			if h.Cluster != n.cfg.Cluster {
				continue
			}
			for x := range s.GuestCPUs(name) {
				distinct[x] = struct{}{}
			}
		}
	})
	guests := make(map[string]string, len(distinct))
	for x := range distinct {
		guests[fsm.CPUDigest(x)] = x
	}
	digs := make([]string, 0, len(guests))
	for d := range guests {
		digs = append(digs, d)
	}
	sort.Strings(digs)
	if baseline != "" {
		bd := fsm.CPUDigest(baseline)
		digs = append([]string{bd}, slices.DeleteFunc(digs, func(d string) bool { return d == bd })...)
		guests[bd] = baseline
	}
	var out []fsm.CPUVerdict
	for _, d := range digs {
		if len(out) == fsm.MaxCPUVerdicts || ctx.Err() != nil {
			break
		}
		v, ok := n.cpuCache.get(hostCPU, d)
		if !ok {
			v, err = def.CompareCPU(ctx, guests[d])
			if err != nil {
				n.log.Debug("compare CPU", "digest", d, "err", err)
				continue
			}
			v.Digest = d
			n.cpuCache.put(hostCPU, d, v)
		}
		out = append(out, v)
	}
	return hostCPU, out
}

// baselineIssue says why a host's CPU does not offer its cluster's
// baseline, by the host's own libvirt's verdict; "" when it does, or when
// it has not answered yet (a host is not set NonOperational on no news).
func baselineIssue(f fsm.HostFacts, cl fsm.Cluster) string {
	if cl.CPUBaselineXML == "" {
		return ""
	}
	v, ok := f.CPUVerdictFor(fsm.CPUDigest(cl.CPUBaselineXML))
	if !ok || v.OK {
		return ""
	}
	return fmt.Sprintf("CPU does not offer the cluster's CPU baseline %s: %s", cl.CPUBaselineModel, v.Explain())
}

// reconcileCPUBaseline computes each cluster's baseline when it has none,
// and lowers an automatic one to admit a host (see above).
func (n *Node) reconcileCPUBaseline(ctx context.Context) {
	if _, ok := n.cfg.Hypervisor.(migrate.CPUDefiner); !ok {
		return
	}
	var need, lower []string
	n.fsm.Read(func(s *fsm.State) {
		seen := map[string]bool{}
		for _, h := range s.Hosts {
			if h.CPUXML == "" || seen[h.Cluster] || !liveHost(h) {
				continue
			}
			seen[h.Cluster] = true
			cl := s.Clusters[h.Cluster]
			switch {
			case cl == nil || cl.CPUBaselineXML == "":
				need = append(need, h.Cluster)
			case cl.CPUBaselineMode == fsm.CPUBaselineAuto && admits(s, *cl):
				lower = append(lower, h.Cluster)
			}
		}
	})
	sort.Strings(need)
	sort.Strings(lower)
	for _, c := range append(need, lower...) {
		cmd, err := n.computeCPUBaseline(ctx, c, fsm.CPUBaselineAuto, n.self())
		if err != nil {
			n.log.Warn("cluster CPU baseline", "cluster", c, "err", err)
			continue
		}
		n.try(ctx, fsm.CmdSetCPUBaseline, cmd)
	}
}

// admits says whether an automatic baseline should be lowered to admit
// the cluster's live hosts that lack it: every such host has compared
// every CPU of the cluster's running guests and runs them all. Then no
// running guest relies on what those hosts lack (each could move to
// them), and lowering takes nothing a guest uses: this is how a cluster
// forming host by host (the first host alone sets the first baseline)
// ends with one every host offers. A host that cannot run some running
// guest's CPU stays NonOperational: lowering for it is an operator's
// decision (recompute). Hosts that have not answered yet are waited for.
func admits(s *fsm.State, cl fsm.Cluster) bool {
	bd := fsm.CPUDigest(cl.CPUBaselineXML)
	var guests []*fsm.VM
	for _, vm := range s.VMs {
		if vm.CPUXML == "" || vm.State != fsm.VMRunning {
			continue
		}
		if h := s.Hosts[vm.Host]; h != nil && h.Cluster == cl.Name {
			guests = append(guests, vm)
		}
	}
	lacking := 0
	for _, h := range s.Hosts {
		if h.Cluster != cl.Name || h.CPUXML == "" || !liveHost(h) {
			continue
		}
		v, ok := h.CPUVerdictFor(bd)
		if !ok || v.OK {
			continue
		}
		lacking++
		for _, vm := range guests {
			if runs, known := migrate.CPURunsOn(s, vm, h); !known || !runs {
				return false
			}
		}
	}
	return lacking > 0
}

func liveHost(h *fsm.Host) bool { return h.State != fsm.HostDown && h.State != fsm.HostLeft }

// ErrNoCPUDefinitions: no live host of the cluster gossiped a CPU
// definition (sim hosts of unknown models, hypervisors without the calls).
var ErrNoCPUDefinitions = errors.New("no host of the cluster has a CPU definition")

// computeCPUBaseline asks this host's libvirt for the baseline of the
// cluster's live hosts' CPU definitions and returns the command that sets
// it, naming the features of the current baseline it drops.
func (n *Node) computeCPUBaseline(ctx context.Context, cluster, mode, actor string) (fsm.SetCPUBaseline, error) {
	def, ok := n.cfg.Hypervisor.(migrate.CPUDefiner)
	if !ok {
		return fsm.SetCPUBaseline{}, fmt.Errorf("cluster %s: this host's hypervisor (%s) cannot compute CPU baselines", cluster, n.cfg.HypervisorKind)
	}
	var hosts, cpus, old []string
	n.fsm.Read(func(s *fsm.State) {
		names := make([]string, 0, len(s.Hosts))
		for name, h := range s.Hosts {
			if h.Cluster == cluster && h.CPUXML != "" && liveHost(h) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			hosts = append(hosts, name)
			cpus = append(cpus, s.Hosts[name].CPUXML)
		}
		if cl := s.Clusters[cluster]; cl != nil {
			old = slices.Clone(cl.CPUBaselineFeatures)
		}
	})
	if len(cpus) == 0 {
		return fsm.SetCPUBaseline{}, fmt.Errorf("cluster %s: %w", cluster, ErrNoCPUDefinitions)
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := def.BaselineCPU(bctx, cpus)
	if err != nil {
		return fsm.SetCPUBaseline{}, fmt.Errorf("cluster %s: baseline of %s: %w", cluster, strings.Join(hosts, ", "), err)
	}
	if len(d.XML) > fsm.MaxCPUXML {
		return fsm.SetCPUBaseline{}, fmt.Errorf("cluster %s: baseline CPU of %d bytes is over the limit of %d", cluster, len(d.XML), fsm.MaxCPUXML)
	}
	return fsm.SetCPUBaseline{Cluster: cluster, XML: d.XML, Model: d.Model, Features: d.Features, Hosts: hosts,
		Mode: mode, Dropped: migrate.MissingFeatures(old, d.Features), At: time.Now().UTC(), Actor: actor}, nil
}
