package node

import (
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// handOffHold bounds how long a cap raised by a hand-off outlives the
// state's older cap when no reshare comes: the leader's reshare follows
// the sample within a Raft round-trip or two (tens of milliseconds in
// the lab), so a second means the leader decided otherwise, and the
// state's cap is applied again.
const handOffHold = time.Second

// handOff gives the cap of migration m, whose transfer sample p found
// sent (fsm.TransferSent: nothing left, or its last pass within about its
// allowed downtime), straight to this host's other transfers, before the
// sample and the leader's reshare go through Raft (migrate.HandOff says
// why and how far the caps overcommit the network). The reshare that
// follows sets the same caps in the state; the jobs of other hosts get
// theirs from it. The sent job itself keeps its cap for its last bytes
// (its completion runs without QEMU's rate limit).
func (n *Node) handOff(m *fsm.Migration, p fsm.Progress) {
	if !fsm.TransferSent(p) {
		return // fast path: only a sent sample hands anything off
	}
	st := n.fsm.State()
	shares := migrate.HandOff(st, m.ID, p)
	type raise struct {
		j          *runningJob
		id         string
		bw, before uint64
	}
	var raises []raise
	n.jobsMu.Lock()
	for _, sh := range shares {
		o := st.Migrations[sh.ID]
		if sh.ID == m.ID || o == nil || o.Source != n.cfg.Name || o.Cluster != m.Cluster {
			continue
		}
		if j := n.jobs[jobKey(o)]; j != nil {
			raises = append(raises, raise{j, o.ID, sh.BandwidthMiB, o.GrantedMiB})
		}
	}
	n.jobsMu.Unlock()
	for _, r := range raises {
		if r.j.handTo(r.bw, r.before, n.log) {
			n.log.Info("cap handed off by an ending transfer", "migration", r.id, "from", m.ID,
				"bandwidth_mib", r.bw, "state_mib", r.before)
		}
	}
}

// handTo sets the job's cap to mib ahead of the state, whose cap for it is
// stateMiB (see runningJob.handedAt). It reports whether the cap changed.
func (j *runningJob) handTo(mib, stateMiB uint64, log interface{ Warn(string, ...any) }) bool {
	j.bwMu.Lock()
	defer j.bwMu.Unlock()
	if j.job == nil || mib == 0 || mib == j.bw {
		return false
	}
	if err := j.job.SetBandwidth(mib); err != nil {
		log.Warn("hand off migration bandwidth", "bandwidth_mib", mib, "err", err)
		return false
	}
	j.bw, j.handedAt, j.staleMiB = mib, time.Now(), stateMiB
	return true
}
