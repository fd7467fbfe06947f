package migrate

import (
	"cmp"
	"maps"
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

// fairShares returns each migration's cap when ms share capacity, with
// net (the whole network) as the want of a migration that asks for no cap.
func fairShares(capacity, net uint64, ms []*fsm.Migration) map[string]uint64 {
	order := slices.Clone(ms)
	// Smallest own caps first (0 asks for no cap, so it comes last), so
	// what a capped migration leaves goes to the ones after it.
	want := func(m *fsm.Migration) uint64 {
		if m.BandwidthMiB == 0 {
			return net
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
	left := capacity
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

// clusterShares returns the cap of every running migration of cluster cl
// (and of extra, being granted, when not nil). Without setup overlap all
// of them share the network fairly. With it (see fsm.State.Ending):
//
//   - an ending migration keeps its cap until it ends;
//   - the others share the whole network fairly, as if the ending ones
//     were gone already;
//   - what that grants beyond the network less the caps of the ending
//     migrations that are not sent yet is taken first from the newest
//     migrations (the one being granted, still in its setup, where a cap
//     costs nothing), down to 1 MiB/s each, and from the ending ones not
//     sent only when nothing else is left.
//
// An ending migration found sent (fsm.TransferSent: nothing left, or its
// last pass within about its allowed downtime) keeps its cap but no longer
// counts against the network: its completion runs without QEMU's rate
// limit, and its last bytes take a fraction of a second, during which the
// link is overcommitted by its cap rather than the next transfers held
// back (fsm.TransferSent says why that is the work-conserving choice).
//
// So an ending transfer is never slowed for the next one, whose setup
// runs meanwhile and which takes what is left until the ending one is
// sent; the link stays full while one wave ends and the next sets up, and
// the caps of the migrations not sent never add up to more than the
// network. A migration keeps at least 1 MiB/s (0 would mean unlimited to
// the hypervisor).
func clusterShares(st *fsm.State, cl fsm.Cluster, extra *fsm.Migration) map[string]uint64 {
	var sharing, ending []*fsm.Migration
	out := map[string]uint64{}
	for _, m := range runningIn(st, cl.Name) {
		switch {
		case st.Sent(m):
			out[m.ID] = m.GrantedMiB
		case st.Ending(m):
			ending = append(ending, m)
		default:
			sharing = append(sharing, m)
		}
	}
	if extra != nil {
		sharing = append(sharing, extra)
	}
	fair := fairShares(cl.MigrationNetMiB, cl.MigrationNetMiB, sharing)
	maps.Copy(out, fair)
	var sum uint64
	for _, bw := range fair {
		sum += bw
	}
	for _, m := range ending {
		out[m.ID] = m.GrantedMiB
		sum += m.GrantedMiB
	}
	if sum <= cl.MigrationNetMiB {
		return out
	}
	excess := sum - cl.MigrationNetMiB
	cut := func(ms []*fsm.Migration) {
		for _, m := range ms {
			if excess == 0 {
				return
			}
			c := min(excess, out[m.ID]-1)
			out[m.ID] -= c
			excess -= c
		}
	}
	newest := slices.Clone(sharing) // queue order: the newest last
	slices.Reverse(newest)
	// The newest give first, then the ending ones not sent, largest caps
	// first.
	rest := slices.Clone(ending)
	slices.SortStableFunc(rest, func(a, b *fsm.Migration) int { return cmp.Compare(b.GrantedMiB, a.GrantedMiB) })
	cut(newest)
	cut(rest)
	if excess > 0 {
		// more migrations than MiB/s: the plain fair shares of what
		// the ending ones leave
		held := uint64(0)
		for _, m := range ending {
			held += out[m.ID]
		}
		maps.Copy(out, fairShares(cl.MigrationNetMiB-min(held, cl.MigrationNetMiB), cl.MigrationNetMiB, sharing))
	}
	return out
}

// GrantNow is the cap a migration in cluster asking for askedMiB (0: no
// own cap) would be granted if it were granted now, against the
// migrations running now (as decide grants): a fixed-bandwidth cluster
// gives its own cap or the cluster's, an auto one its fair share. 0 means
// unlimited. A dry run predicts the migration at it.
func GrantNow(st *fsm.State, cluster string, askedMiB uint64) uint64 {
	cl := st.Cluster(cluster)
	m := &fsm.Migration{ID: "\x00dry-run", Cluster: cluster, BandwidthMiB: askedMiB}
	if cl.BandwidthMode == fsm.BandwidthAuto && cl.MigrationNetMiB > 0 {
		return clusterShares(st, cl, m)[m.ID]
	}
	return bandwidth(cl, m)
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
		if len(runningIn(st, name)) == 0 {
			continue
		}
		out = append(out, changed(st, clusterShares(st, cl, nil), "")...)
	}
	return out
}

// HandOff returns the caps the leader's Reshare will commit once the
// sample p of running migration id is applied, when p finds its transfer
// sent (fsm.State.Sent: nothing left, or its last pass within about its
// allowed downtime): the others share the network without it, and it
// keeps its own cap for its last bytes. Nil when p hands nothing off.
// st must be a private copy: HandOff puts p into it.
//
// The source calls it the moment its monitor finds a job all sent and
// raises its other jobs' caps at once, before the sample and the
// leader's reshare go through Raft: that round-trip (sample committed,
// leader wakes and plans, reshare committed, applied on the source) was
// link time lost at every wave of a drain, the whole network idle while
// the ending transfer completes. The caps are the leader's own rule on
// the state the leader reaches when the sample commits, so they add up
// to no more than the network besides the sent job's own cap (its last
// bytes and its completion, which runs without QEMU's rate limit), and
// the reshare that follows sets the same caps again.
func HandOff(st *fsm.State, id string, p fsm.Progress) []fsm.Share {
	m := st.Migrations[id]
	if m == nil || m.State != fsm.MigRunning {
		return nil
	}
	m.Progress = p
	if !st.Sent(m) {
		return nil
	}
	return Reshare(st)
}
