package migrate

import (
	"slices"

	"github.com/hostmesh/hostmesh/fsm"
)

// An auto-bandwidth cluster divides its migration network's capacity
// (Cluster.MigrationNetMiB) among the migrations running in it, max-min
// fairly: each gets an equal part, a migration asking for less than its
// part (its own --bandwidth) keeps only what it asked for, and the rest is
// shared among the others. The parts change whenever a migration starts or
// ends: a grant lowers the running ones in the same Raft entry, so the caps
// granted never add up to more than the capacity; Reshare raises them again
// after one ends.

// fairShares returns each migration's cap when ms share cl's capacity.
func fairShares(cl fsm.Cluster, ms []*fsm.Migration) map[string]uint64 {
	order := slices.Clone(ms)
	// Smallest own caps first (0 asks for no cap, so it comes last), so
	// what a capped migration leaves goes to the ones after it.
	want := func(m *fsm.Migration) uint64 {
		if m.BandwidthMiB == 0 {
			return cl.MigrationNetMiB
		}
		return m.BandwidthMiB
	}
	slices.SortStableFunc(order, func(a, b *fsm.Migration) int {
		switch wa, wb := want(a), want(b); {
		case wa < wb:
			return -1
		case wa > wb:
			return 1
		}
		return 0
	})
	out := make(map[string]uint64, len(order))
	left := cl.MigrationNetMiB
	for i, m := range order {
		part := left / uint64(len(order)-i)
		if w := want(m); w < part {
			out[m.ID] = w
			left -= w
			continue
		}
		// This one and all after it (they want as much or more) get an
		// equal part; the remainder of the division stays unused.
		for _, rest := range order[i:] {
			out[rest.ID] = max(part, 1)
		}
		break
	}
	return out
}

// runningIn returns the running migrations of a cluster, in queue order.
func runningIn(st *fsm.State, cluster string) []*fsm.Migration {
	var out []*fsm.Migration
	for _, m := range st.Running() {
		if m.Cluster == cluster {
			out = append(out, m)
		}
	}
	return out
}

// changed lists the running migrations (other than skip) whose cap differs
// from their share, in queue order.
func changed(st *fsm.State, shares map[string]uint64, skip string) []fsm.Share {
	var out []fsm.Share
	for _, m := range st.Running() {
		if bw, ok := shares[m.ID]; ok && m.ID != skip && m.GrantedMiB != bw {
			out = append(out, fsm.Share{ID: m.ID, BandwidthMiB: bw})
		}
	}
	return out
}

// Reshare returns the new caps of the running migrations of auto-bandwidth
// clusters whose fair share changed, e.g. because another one ended. It is
// pure, like Schedule.
func Reshare(st *fsm.State) []fsm.Share {
	var out []fsm.Share
	for _, name := range st.ClusterNames() {
		cl := st.Cluster(name)
		if cl.BandwidthMode != fsm.BandwidthAuto || cl.MigrationNetMiB == 0 {
			continue
		}
		ms := runningIn(st, name)
		if len(ms) == 0 {
			continue
		}
		out = append(out, changed(st, fairShares(cl, ms), "")...)
	}
	return out
}
