package node

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// BalanceActor is the actor of the migrations the leader's balancer
// queues: it counts them against the cluster's budget, and tells an
// operator reading `meshctl migrations` who moved the VM.
const BalanceActor = "balance"

// BalancePlan is a balancing pass's decision (api.BalancePlan, the
// type `meshctl balance --dry-run` reads); Note renders it for the event
// log.
type BalancePlan = api.BalancePlan

// BalanceMove and BalanceRefusal are a plan's moves and refusals.
type (
	BalanceMove    = api.BalanceMove
	BalanceRefusal = api.BalanceRefusal
)

// planNote renders a plan as one line for the event log.
func planNote(p BalancePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s spread %.1f points (threshold %d)", p.Mode, p.Spread, p.Threshold)
	if p.Idle != "" {
		b.WriteString(": " + p.Idle)
	}
	for _, m := range p.Moves {
		fmt.Fprintf(&b, "; move vm %s %s → %s (%s)", m.VM, m.From, m.To, m.Reason)
	}
	if len(p.Moves) > 0 {
		fmt.Fprintf(&b, "; %.1f points after", p.After)
	}
	for _, r := range p.Refused {
		fmt.Fprintf(&b, "; vm %s stays on %s: %s", r.VM, r.Host, r.Reason)
	}
	s := b.String()
	if len(s) > 4000 {
		s = s[:4000] + "…"
	}
	return s
}

// PlanBalance decides one balancing pass of cluster on st (which it does
// not change) at now. It is pure, so the leader and `meshctl balance
// --dry-run` get the same answer from the same state.
//
// The load of a host is the memory (or vCPUs) of the VMs that run there
// or are headed there, over the host's memory (CPUs). While the spread
// exceeds the threshold it takes the most loaded host that has a VM it
// may move and moves the VM, to the host, that leaves the two closest:
// a move must leave the destination below where the source was, so a
// move never makes the spread wider and two hosts never trade a VM back
// and forth. A VM may move when it runs, no migration holds it, it is
// migratable, it has not moved within the hold, and the destination
// passes every prerequisite check (migrate.DryRun: affinity, memory,
// networks, storage, CPU) and breaks no soft affinity rule. Every move is
// applied to a private copy before the next is chosen, so the checks see
// the pass's earlier moves (two VMs of a vm-apart rule never land on one
// host in one pass).
//
// Nothing moves while a host of the cluster is being drained (the drain
// owns the slots), nor beyond the budget: BalanceBudget moves an hour,
// and no more than the cluster's free concurrent slots at once.
func PlanBalance(st *fsm.State, cluster string, now time.Time) BalancePlan {
	cl := st.Cluster(cluster)
	mode, threshold, hold, budget := cl.BalanceSettings()
	p := BalancePlan{Cluster: cluster, Mode: mode, Threshold: threshold, Load: map[string]float64{},
		Moves: []BalanceMove{}, Refused: []BalanceRefusal{}}
	if mode == fsm.BalanceOff {
		p.Idle = "balancing is off"
		return p
	}
	work := st.Clone()
	var hosts []string
	for _, h := range work.HostNames() {
		hs := work.Hosts[h]
		if hs.Cluster != cluster {
			continue
		}
		if hs.State == fsm.HostPreparingForMaintenance {
			p.Idle = "host " + h + " is being drained"
			return p
		}
		if hs.State == fsm.HostUp && capacity(hs, mode) > 0 {
			hosts = append(hosts, h)
		}
	}
	load := loads(work, hosts, mode)
	spreadNow := func() (string, string, float64) { return spreadOf(load, hosts) }
	for _, h := range hosts {
		p.Load[h] = round1(load[h])
	}
	_, _, p.Spread = spreadNow()
	p.Spread = round1(p.Spread)
	p.After = p.Spread
	if len(hosts) < 2 {
		p.Idle = "fewer than two Up hosts"
		return p
	}

	// The budget: moves queued by the balancer within the last hour, and
	// the cluster's running or queued ones against its concurrent slots.
	lastMove := map[string]time.Time{}
	spent, busy := 0, 0
	for _, m := range work.Migrations {
		if m.Cluster != cluster {
			continue
		}
		if m.RequestedBy == BalanceActor && now.Sub(m.CreatedAt) < time.Hour {
			spent++
		}
		if !m.State.Final() {
			busy++
		}
		if m.State == fsm.MigSucceeded {
			if k := work.MigrationVMKey(m); m.EndedAt.After(lastMove[k]) {
				lastMove[k] = m.EndedAt
			}
		}
	}
	concurrent := cl.MaxConcurrent
	if concurrent < 1 {
		concurrent = fsm.DefaultCluster(cluster).MaxConcurrent
	}
	p.Budget = max(0, min(budget-spent, concurrent-busy))
	if p.Spread <= float64(threshold) {
		p.Idle = "within the threshold"
		return p
	}
	if p.Budget == 0 {
		if budget-spent <= 0 {
			p.Idle = fmt.Sprintf("budget spent: %d balancing moves within the last hour", spent)
		} else {
			p.Idle = fmt.Sprintf("waiting: %d of %d migrations of the cluster running or queued", busy, concurrent)
		}
		return p
	}

	moved := map[string]bool{}
	refused := map[string]BalanceRefusal{}
	for len(p.Moves) < p.Budget {
		_, _, spread := spreadNow()
		if spread <= float64(threshold) {
			break
		}
		mv, ok := bestMove(work, hosts, load, mode, now, hold, lastMove, moved, refused)
		if !ok {
			p.Idle = "no VM of a loaded host can move to a less loaded one"
			break
		}
		vm := work.VMs[mv.VMKey]
		w := weight(vm, mode)
		load[mv.From] -= w / capacity(work.Hosts[mv.From], mode)
		load[mv.To] += w / capacity(work.Hosts[mv.To], mode)
		// The VM is where the move takes it, for the next checks.
		work.MoveVM(mv.VMKey, mv.To)
		work.Hosts[mv.From].MemFreeMiB += vm.MemoryMiB
		dst := work.Hosts[mv.To]
		dst.MemFreeMiB -= min(dst.MemFreeMiB, vm.MemoryMiB)
		moved[mv.VMKey] = true
		delete(refused, mv.VMKey)
		p.Moves = append(p.Moves, mv)
	}
	_, _, p.After = spreadNow()
	p.After = round1(p.After)
	for _, r := range refused {
		p.Refused = append(p.Refused, r)
	}
	sort.Slice(p.Refused, func(i, j int) bool {
		if p.Refused[i].Host != p.Refused[j].Host {
			return p.Refused[i].Host < p.Refused[j].Host
		}
		return p.Refused[i].VM < p.Refused[j].VM
	})
	return p
}

// bestMove finds the move from the most loaded host that has one: the
// VM and destination that leave the smallest spread over every host,
// then the least loaded destination (so a pass spreads a loaded host's
// VMs over the emptiest hosts first), then names, for determinism. The
// destination must end below the source's load before the move. VMs of
// the loaded hosts that may not move are recorded in refused.
func bestMove(st *fsm.State, hosts []string, load map[string]float64, mode string, now time.Time, hold time.Duration,
	lastMove map[string]time.Time, moved map[string]bool, refused map[string]BalanceRefusal) (BalanceMove, bool) {
	bySrc := slices.Clone(hosts)
	sort.SliceStable(bySrc, func(i, j int) bool { return load[bySrc[i]] > load[bySrc[j]] })
	minLoad := load[bySrc[len(bySrc)-1]]
	// spreadAfter is the spread once w% left src and w2% reached dst.
	spreadAfter := func(src, dst string, fromSrc, toDst float64) float64 {
		hi, lo := math.Inf(-1), math.Inf(1)
		for _, h := range hosts {
			l := load[h]
			switch h {
			case src:
				l -= fromSrc
			case dst:
				l += toDst
			}
			hi, lo = max(hi, l), min(lo, l)
		}
		return hi - lo
	}
	for _, src := range bySrc {
		if load[src] <= minLoad {
			break
		}
		type rank struct{ spread, after float64 }
		var best BalanceMove
		bestRank := rank{math.Inf(1), math.Inf(1)}
		better := func(r rank, to, k string) bool {
			const eps = 1e-9
			switch {
			case r.spread < bestRank.spread-eps:
				return true
			case r.spread > bestRank.spread+eps:
				return false
			case r.after < bestRank.after-eps:
				return true
			case r.after > bestRank.after+eps:
				return false
			case to != best.To:
				return to < best.To
			}
			return k < best.VMKey
		}
		for _, vm := range st.VMsOn(src) {
			k := vm.Key()
			if vm.State != fsm.VMRunning || moved[k] {
				continue
			}
			refuse := func(why string) { refused[k] = BalanceRefusal{VM: vm.Name, Host: src, Reason: why} }
			switch {
			case vm.Migration != "":
				continue // moving already
			case st.NotMigratable(k) != "":
				refuse("migratable: " + st.NotMigratable(k))
				continue
			case now.Sub(lastMove[k]) < hold:
				// The time it moved, not how long ago: a pass that keeps
				// it for the same reason writes the same note.
				refuse(fmt.Sprintf("hold: moved at %s, stays until %s", lastMove[k].Format(time.RFC3339),
					lastMove[k].Add(hold).Format(time.RFC3339)))
				continue
			}
			w := weight(vm, mode)
			fromSrc := w / capacity(st.Hosts[src], mode)
			var firstWhy string
			for _, c := range migrate.DryRun(st, k) {
				if !slices.Contains(hosts, c.Host) {
					continue
				}
				toDst := w / capacity(st.Hosts[c.Host], mode)
				after := load[c.Host] + toDst
				if after >= load[src] {
					continue // would not even the two out
				}
				if !c.OK {
					if firstWhy == "" {
						firstWhy = c.Host + ": " + firstFailed(c)
					}
					continue
				}
				if soft := softBroken(st, k, c.Host); soft != "" {
					if firstWhy == "" {
						firstWhy = c.Host + ": " + soft
					}
					continue
				}
				if r := (rank{spreadAfter(src, c.Host, fromSrc, toDst), after}); best.VMKey == "" || better(r, c.Host, k) {
					bestRank = r
					best = BalanceMove{VM: vm.Name, VMKey: k, From: src, To: c.Host,
						Reason: fmt.Sprintf("%s %.1f%% → %.1f%%, %s %.1f%% → %.1f%%", src, load[src],
							load[src]-fromSrc, c.Host, load[c.Host], after)}
				}
			}
			if firstWhy != "" {
				refuse(firstWhy)
			}
		}
		if best.VMKey != "" {
			return best, true
		}
	}
	return BalanceMove{}, false
}

// firstFailed is a candidate's first failed check, as refusals name it.
func firstFailed(c migrate.Candidate) string {
	for _, r := range c.Results {
		if !r.OK {
			return r.String()
		}
	}
	return "refused"
}

// softBroken names the soft affinity rules moving the VM with key k to
// host would break ("" when none): balancing is optional, so it never
// breaks a rule an operator asked for, even a soft one.
func softBroken(st *fsm.State, k, host string) string {
	var out []string
	for _, b := range st.AffinityBreaches(k, host) {
		if !b.Rule.Hard {
			out = append(out, "affinity: "+b.String())
		}
	}
	return strings.Join(out, "; ")
}

// loads computes each host's load in percent: the VMs running there or
// headed there (a migration with a destination holds them).
func loads(st *fsm.State, hosts []string, mode string) map[string]float64 {
	sum := map[string]float64{}
	for _, vm := range st.VMs {
		if vm.State == fsm.VMShutoff {
			continue
		}
		at := vm.Host
		if m := st.Migrations[vm.Migration]; vm.Migration != "" && m != nil && !m.State.Final() && m.Dest != "" {
			at = m.Dest
		}
		sum[at] += weight(vm, mode)
	}
	out := map[string]float64{}
	for _, h := range hosts {
		out[h] = sum[h] / capacity(st.Hosts[h], mode)
	}
	return out
}

// weight is what a VM adds to its host's load, in hundredths of the unit
// capacity counts, so load comes out in percent.
func weight(vm *fsm.VM, mode string) float64 {
	if mode == fsm.BalanceCPU {
		return 100 * float64(vm.VCPUs)
	}
	return 100 * float64(vm.MemoryMiB)
}

func capacity(h *fsm.Host, mode string) float64 {
	if mode == fsm.BalanceCPU {
		return float64(h.CPUs)
	}
	return float64(h.MemTotalMiB)
}

// spreadOf returns the most and least loaded hosts and the spread.
func spreadOf(load map[string]float64, hosts []string) (string, string, float64) {
	if len(hosts) == 0 {
		return "", "", 0
	}
	hi, lo := hosts[0], hosts[0]
	for _, h := range hosts {
		if load[h] > load[hi] {
			hi = h
		}
		if load[h] < load[lo] {
			lo = h
		}
	}
	return hi, lo, load[hi] - load[lo]
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
