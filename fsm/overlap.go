package fsm

// Setup overlap: what keeps a drain's migration network busy between
// waves. Every migration pays a setup before its first byte (libvirt's
// Prepare: the destination starts its QEMU; 1.8 s per migration in the
// lab, where the transfer of a 256 MiB guest takes 9 s) and no bytes move
// meanwhile. If the next migration were granted only when a slot is free,
// the link would idle for that setup after every wave.
//
// In an auto-bandwidth cluster with OverlapMs set, a running migration
// whose transfer is predicted, from its last progress report (remaining
// bytes ÷ rate), to end within OverlapMs no longer holds its slot: the
// next migration is granted then, and its setup runs while the ending
// transfer finishes. How the limits count:
//
//   - a migration counts against max_outgoing, max_incoming and
//     max_concurrent from its grant (its setup included) until its
//     transfer is predicted to end within OverlapMs, or it ends;
//   - each held slot is lent once: per host (and cluster) at most limit
//     ending migrations stop counting, so at most 2 × limit migrations
//     exist at once, at most limit of them before their last seconds,
//     even when an ending migration stalls there (a workload that keeps
//     dirtying its last pages);
//   - the caps granted never add up to more than the migration network
//     (see migrate/share.go): an ending migration keeps its cap, the
//     others share what is left.
//
// The rule reads only replicated fields (the cluster, the last progress
// report), so every replica counts the slots alike when it applies a grant.

// MaxOverlapMs bounds Cluster.OverlapMs: a minute is far beyond any
// migration's setup.
const MaxOverlapMs = 60_000

// DefaultOverlapMs is what meshd sets when a cluster switches to auto
// bandwidth without an overlap given: a little more than the lab's setup
// (1.8 s), so that the next transfer starts as the last one ends.
const DefaultOverlapMs = 2_000

// Overlaps reports whether the cluster lets setups overlap transfers:
// only auto bandwidth knows the network the overlap must keep busy.
func (c Cluster) Overlaps() bool {
	return c.OverlapMs > 0 && c.BandwidthMode == BandwidthAuto && c.MigrationNetMiB > 0
}

// Ending reports whether running migration m no longer holds its slot:
// its cluster overlaps setups and its transfer is predicted to end within
// the cluster's OverlapMs. A post-copy migration never ends early: its
// guest already runs on the destination and it pulls pages at its cap.
func (s *State) Ending(m *Migration) bool {
	if m == nil || m.State != MigRunning {
		return false
	}
	cl := s.Cluster(m.Cluster)
	return cl.Overlaps() && transferEnding(m.Progress, cl.OverlapMs)
}

// Sent reports whether ending migration m has nothing left to send: its
// job completes (the last pause, the destination resuming), which QEMU
// does without the rate limit, so its cap can go to the next transfer.
func (s *State) Sent(m *Migration) bool {
	return s.Ending(m) && m.Progress.RemainingBytes == 0
}

// transferEnding predicts from a progress report whether the transfer
// ends within overlapMs: nothing left to send once something was sent, or
// the rest at the current rate in time.
func transferEnding(p Progress, overlapMs int64) bool {
	switch {
	case p.PostCopy || p.ProcessedBytes == 0:
		return false
	case p.RemainingBytes == 0:
		return true
	case p.MiBps <= 0:
		return false
	}
	leftMs := float64(p.RemainingBytes) / (p.MiBps * (1 << 20)) * 1000
	return leftMs <= float64(overlapMs)
}
