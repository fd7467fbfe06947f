package migrate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// Decision is what the leader should write to Raft for one queued migration:
// grant it a slot towards Dest at BandwidthMiB, or, when Fail is non-empty,
// fail it with that reason. Migrations that must wait get no decision.
type Decision struct {
	Migration    string `json:"migration"`
	Dest         string `json:"dest,omitempty"`
	BandwidthMiB uint64 `json:"bandwidth_mib,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Fail         string `json:"fail,omitempty"`
	// Attempt is the migration's attempt the decision is about.
	Attempt int `json:"attempt"`
	// Reshare lowers the caps of the migrations already running in an
	// auto-bandwidth cluster, to be committed with the grant.
	Reshare []fsm.Share `json:"reshare,omitempty"`
}

// Schedule decides which queued migrations start now. It is pure, so the
// leader can run it on every state change and on a ticker, and running it
// twice on the same state gives the same decisions.
//
// It walks st.Queued() in queue order. Each grant is applied to a private
// clone as Running before the next migration is considered, so the slot
// limits (per source outgoing, per destination incoming, per cluster) and the
// incoming memory count the grants of this very call. A migration whose slots
// are full waits without blocking later ones that have free slots; since slot
// use only grows within a call, a later migration can never take the outgoing
// slot an earlier one from the same source is waiting for, and the next call
// offers a freed slot to the earliest one first. A migration waiting for a
// destination's incoming slot does not hold its source's outgoing slot: a later
// migration from the same source may take it, as anything else would let one
// busy destination stall a whole drain.
//
// Queued migrations with CancelRequested are skipped: the leader cancels them.
func Schedule(st *fsm.State) []Decision {
	work := st.Clone()
	var out []Decision
	for _, m := range work.Queued() {
		if m.CancelRequested {
			continue
		}
		d, ok := decide(work, m)
		if !ok {
			continue
		}
		out = append(out, d)
		if d.Fail != "" {
			m.State = fsm.MigFailed // drops out of incoming memory for the rest
			continue
		}
		m.State = fsm.MigRunning
		m.Dest = d.Dest
		m.GrantedMiB = d.BandwidthMiB
		fsm.ApplyShares(work, d.Reshare)
	}
	return out
}

// limits are a cluster's slot limits with unset (non-positive) values
// replaced by the defaults, so a partly configured cluster is not frozen.
type limits struct{ out, in, concurrent int }

func limitsOf(c fsm.Cluster) limits {
	def := fsm.DefaultCluster(c.Name)
	l := limits{c.MaxOutgoing, c.MaxIncoming, c.MaxConcurrent}
	if l.out <= 0 {
		l.out = def.MaxOutgoing
	}
	if l.in <= 0 {
		l.in = def.MaxIncoming
	}
	if l.concurrent <= 0 {
		l.concurrent = def.MaxConcurrent
	}
	return l
}

// decide returns the decision for m, or false when m must wait for a slot.
// Failures are decided before slots: a migration that cannot go anywhere
// should fail now, not after waiting for a slot it would never use.
func decide(st *fsm.State, m *fsm.Migration) (Decision, bool) {
	fail := func(format string, a ...any) (Decision, bool) {
		return Decision{Migration: m.ID, Attempt: m.Attempt, Fail: fmt.Sprintf(format, a...)}, true
	}
	vm := st.VMOf(m)
	switch {
	case vm == nil:
		return fail("vm %s no longer exists", m.VM)
	case vm.State != fsm.VMRunning:
		return fail("vm %s is %s, not running", m.VM, vm.State)
	case vm.Host != m.Source:
		return fail("vm %s now runs on %s, not on source %s", m.VM, vm.Host, m.Source)
	}

	cl := st.Cluster(m.Cluster)
	lim := limitsOf(cl)
	use := st.Slots()

	var dest, reason string
	if m.Dest != "" {
		if err := Refusal(m.VM, m.Dest, CheckQueued(st, m, m.Dest)); err != nil {
			return fail("%s", err.Error())
		}
		if use.Cluster[m.Cluster] >= lim.concurrent || use.Out[m.Source] >= lim.out || use.In[m.Dest] >= lim.in {
			return Decision{}, false
		}
		dest = m.Dest
		reason = fmt.Sprintf("%s: pinned by the user; all %d checks pass", dest, len(checks))
	} else {
		key, exclude := st.MigrationVMKey(m), append([]string{m.Source}, m.Tried...)
		// Waiting on its source's or cluster's slot, it stays queued if
		// any host could take it; only when none can must it fail now,
		// with place's explanation.
		if fastPlacement && (use.Cluster[m.Cluster] >= lim.concurrent || use.Out[m.Source] >= lim.out) && anyPasses(st, key, m.ID, exclude) {
			return Decision{}, false
		}
		p, err := place(st, key, m.ID, exclude)
		if errors.Is(err, ErrNoHost) || errors.Is(err, ErrUnknownVM) {
			return fail("%s", err.Error())
		}
		if use.Cluster[m.Cluster] >= lim.concurrent || use.Out[m.Source] >= lim.out {
			return Decision{}, false
		}
		dest, reason = pickWithSlot(st, m, p, use, lim)
		if dest == "" {
			return Decision{}, false
		}
	}
	d := Decision{Migration: m.ID, Attempt: m.Attempt, Dest: dest, BandwidthMiB: bandwidth(cl, m), Reason: reason}
	if cl.BandwidthMode == fsm.BandwidthAuto && cl.MigrationNetMiB > 0 {
		shares := clusterShares(st, cl, m)
		d.BandwidthMiB = shares[m.ID]
		d.Reshare = changed(st, shares, m.ID)
	}
	return d, true
}

// pickWithSlot takes the best passing candidate with an incoming slot free.
// A full best host does not make the migration wait: the next passing host
// takes it now, which keeps drains moving (oVirt's "busy" destination makes
// the source retry; here the leader already knows and picks another). The
// reason says which better hosts were skipped and why.
func pickWithSlot(st *fsm.State, m *fsm.Migration, p Placement, use fsm.SlotUse, lim limits) (string, string) {
	var skipped []string
	passing := 0
	for _, c := range p.Candidates {
		if c.OK {
			passing++
		}
	}
	for i, c := range p.Candidates {
		if !c.OK {
			break
		}
		if use.In[c.Host] >= lim.in {
			skipped = append(skipped, fmt.Sprintf("%s has no incoming slot free (%d/%d)", c.Host, use.In[c.Host], lim.in))
			continue
		}
		note := softNote(st, st.MigrationVMKey(m), c.Host)
		reason := fmt.Sprintf("%s: %s; best of %d passing hosts%s", c.Host, loadOf(st, c.Host, m.ID), passing, note)
		if i > 0 {
			reason = fmt.Sprintf("%s: %s; choice %d of %d passing hosts because %s%s",
				c.Host, loadOf(st, c.Host, m.ID), i+1, passing, strings.Join(skipped, ", "), note)
		}
		return c.Host, reason
	}
	return "", ""
}

// bandwidth is the cap granted to m in a fixed-bandwidth cluster (or an
// auto one without a configured capacity): m's own cap or the cluster's.
// 0 means unlimited (Params.BandwidthMiB).
func bandwidth(cl fsm.Cluster, m *fsm.Migration) uint64 {
	if cl.BandwidthMode != fsm.BandwidthAuto && m.BandwidthMiB == 0 {
		return cl.BandwidthMiB
	}
	return m.BandwidthMiB
}
