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
//     others share what is left; only a transfer found sent
//     (TransferSent) is no longer counted, for the fraction of a second
//     its last bytes take.
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

// Sent reports whether ending migration m has (all but) sent its
// transfer (TransferSent): its cap can go to the next transfer.
func (s *State) Sent(m *Migration) bool {
	return s.Ending(m) && TransferSent(m.Progress)
}

// SentWindowMs is how close to its end a later pass of a pre-copy
// transfer counts as sent (TransferSent) when the allowed downtime is
// shorter: 300 ms of data at the transfer's rate.
const SentWindowMs = 300

// TransferSent reports whether progress report p shows a pre-copy
// transfer that sent everything, or that is in a later pass (its
// Iteration 2 or more: the first pass is over) with no more left than its
// rate sends in its allowed downtime (at least SentWindowMs).
//
// Why not only "nothing left": QEMU completes a pre-copy as soon as its
// remaining data at its bandwidth fits in the allowed downtime, so the
// job's samples rarely read exactly 0 remaining before the job ends; in
// the lab only 7 of 12 wave-end transfers of a drain were seen all sent
// before their job's success, and in the others the next transfers ran at
// their setup share of 1 MiB/s through the ending one's whole completion
// (the stop-and-copy, the destination resuming, Finish and Confirm:
// 1.2-2.7 s of an idle link per wave end). A later pass that close to
// its end completes within about its downtime.
//
// Its cap is handed on while its last bytes go (migrate/share.go): a sent
// transfer keeps its own cap and the others share the whole network, so
// the caps overcommit the link by the sent one's cap for those last
// fractions of a second. That is the work-conserving choice: cutting the
// ending transfer instead would stretch its last bytes (and shrink QEMU's
// completion threshold, its bandwidth × downtime) and idle the link later
// while it completes. A transfer that keeps dirtying more than that stays
// not sent, or falls back to not sent at its next sample, and the caps are
// shared as before. The rule reads only the report, so the source's
// hand-off and every replica decide alike.
func TransferSent(p Progress) bool {
	switch {
	case p.PostCopy || p.ProcessedBytes == 0:
		return false
	case p.RemainingBytes == 0:
		return true
	case p.Iteration < 2 || p.MiBps <= 0:
		return false
	}
	windowMs := max(p.MaxDowntimeMs, SentWindowMs)
	return float64(p.RemainingBytes) <= p.MiBps*(1<<20)*float64(windowMs)/1000
}

// transferEnding predicts from a progress report whether the transfer
// ends within overlapMs: nothing left to send once something was sent, or
// the rest in time (TransferLeftMs).
func transferEnding(p Progress, overlapMs int64) bool {
	switch {
	case p.PostCopy || p.ProcessedBytes == 0:
		return false
	case p.RemainingBytes == 0:
		return true
	}
	leftMs, ok := TransferLeftMs(p)
	return ok && leftMs <= float64(overlapMs)
}

// TransferLeftMs predicts from a progress report how long the transfer's
// current pass has left: the earlier of two estimates, ok false when no
// rate is known.
//
//   - Its remaining data at the faster of the wire rate (MiBps) and the
//     rate at which the remaining data fell over the pass so far
//     (FallBps).
//   - In the first pass, when the VM's last migration's first pass is
//     known (LastFirstPassBytes) and this one has not sent as much yet:
//     the difference at the wire rate.
//
// Why not remaining ÷ wire rate alone: QEMU counts every page not yet
// sent in the remaining data, zero pages too, and sends a zero page as a
// few bytes, so the remaining data of a guest with untouched memory falls
// faster than the wire carries, in jumps where the pass crosses a run of
// zero pages. In the lab (256 MiB guests, 64 MiB filled, ~139 MiB sent
// each) that estimate granted a drain's next transfers only 0.6-1.5 s
// before the ending ones' bytes stopped, and their setup (1.8-2.5 s) left
// the link idle at every wave end.
//
// The fall rate is this pass's own evidence, there for every guest, and
// averaged from the pass's first sample a run of zero pages does not make
// a pass look ending; but it cannot see a run of zero pages still ahead,
// and in the lab the last 50-90 MiB of each pass's remaining data held
// one, crossed in under half a second. Where the guest's data lies is
// what its last migration's first pass measured: a guest's memory fills
// slowly, so that figure rarely exceeds what this pass will send, and a
// pass that already sent more (the guest filled since) falls back to the
// rates. An early prediction costs little: the next transfer sets up and
// takes what the ending one leaves (migrate/share.go), each slot lent
// once; a late one idles the link. Where every page is data and the VM
// never moved, the wire rate decides, as before.
func TransferLeftMs(p Progress) (float64, bool) {
	wire := p.MiBps * (1 << 20)
	bps := max(wire, float64(p.FallBps))
	if bps <= 0 {
		return 0, false
	}
	left := float64(p.RemainingBytes) / bps * 1000
	if p.Iteration == 1 && wire > 0 && p.LastFirstPassBytes > p.ProcessedBytes {
		left = min(left, float64(p.LastFirstPassBytes-p.ProcessedBytes)/wire*1000)
	}
	return left, true
}
