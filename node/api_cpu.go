package node

import (
	"errors"
	"net/http"

	"github.com/hostmesh/hostmesh/fsm"
)

// handleRecomputeCPUBaseline recomputes a cluster's CPU baseline from its
// live hosts on this host's libvirt (any host can: the baseline depends on
// the definitions, not on the host computing it) and proposes it. This is
// the operator's way to lower the baseline to admit a weaker host, or raise
// it after one left; the event names the features it drops (cpu.go).
func (n *Node) handleRecomputeCPUBaseline(w http.ResponseWriter, r *http.Request) {
	name, err := clusterParam(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	n.fsm.Read(func(s *fsm.State) {
		if !clusterKnown(s, name) {
			err = unknownCluster(s, name)
		}
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	cmd, err := n.computeCPUBaseline(r.Context(), name, fsm.CPUBaselineOperator, actorOf(r))
	if errors.Is(err, ErrNoCPUDefinitions) {
		writeErr(w, badRequest("%v", err))
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	if _, err := n.propose(r.Context(), fsm.CmdSetCPUBaseline, cmd); err != nil {
		writeErr(w, err)
		return
	}
	var cl fsm.Cluster
	n.fsm.Read(func(s *fsm.State) { cl = s.Cluster(name) })
	writeJSON(w, http.StatusOK, cl)
}
