package node

import (
	"net/http"
	"time"
)

// handleBalancePlan answers what the next balancing pass of a cluster
// would do, from this replica's state (PlanBalance is pure: the leader's
// pass on the same state decides the same). An unknown cluster is a 404,
// as on GET /v1/clusters/{name}.
func (n *Node) handleBalancePlan(w http.ResponseWriter, r *http.Request) {
	name, err := clusterParam(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	st := n.fsm.State()
	if !clusterKnown(st, name) {
		writeErr(w, unknownCluster(st, name))
		return
	}
	writeJSON(w, http.StatusOK, PlanBalance(st, name, time.Now().UTC()))
}
