package node

import (
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

func (n *Node) handleAffinity(w http.ResponseWriter, r *http.Request) {
	out := []fsm.AffinityRule{}
	n.fsm.Read(func(s *fsm.State) {
		for _, name := range s.AffinityNames() {
			out = append(out, *s.Affinity[name])
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// handleCreateAffinity adds a rule; the FSM resolves the VMs and refuses
// unknown ones, so every replica binds the rule to the same VMs.
func (n *Node) handleCreateAffinity(w http.ResponseWriter, r *http.Request) {
	var req api.AffinityRequest
	if err := decodeBody(r, "affinity", &req); err != nil {
		writeErr(w, err)
		return
	}
	cmd := fsm.CreateAffinity{Name: req.Name, Kind: req.Kind, Hard: req.Hard, VMs: req.VMs, Hosts: req.Hosts,
		Actor: actorOf(r), At: time.Now().UTC()}
	if _, err := n.propose(r.Context(), fsm.CmdCreateAffinity, cmd); err != nil {
		writeErr(w, err)
		return
	}
	var rule fsm.AffinityRule
	n.fsm.Read(func(s *fsm.State) {
		if v := s.Affinity[req.Name]; v != nil {
			rule = *v
		}
	})
	writeJSON(w, http.StatusCreated, rule)
}

func (n *Node) handleDeleteAffinity(w http.ResponseWriter, r *http.Request) {
	if _, err := n.propose(r.Context(), fsm.CmdDeleteAffinity, fsm.DeleteAffinity{Name: r.PathValue("name"),
		Actor: actorOf(r), At: time.Now().UTC()}); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDrainPlan answers what draining a host would do, from this
// replica's state: the plan is the leader's scheduler run on a copy.
func (n *Node) handleDrainPlan(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("name")
	st := n.fsm.State()
	if st.Hosts[host] == nil {
		writeErr(w, notFound("drain plan: no such host %q", host))
		return
	}
	p, err := PlanDrain(st, host, time.Now().UTC())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
