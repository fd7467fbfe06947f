package node

import (
	"errors"
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// handleSetVM changes an operator's settings of one VM (meshctl vm set).
func (n *Node) handleSetVM(w http.ResponseWriter, r *http.Request) {
	var req api.VMSettingsRequest
	if err := decodeBody(r, "set vm "+r.PathValue("vm"), &req); err != nil {
		writeErr(w, err)
		return
	}
	ref := r.PathValue("vm")
	if req.Migratable == nil && req.Policy == nil && req.BandwidthMiB == nil {
		writeErr(w, badRequest("set vm %q: no setting given (migratable, policy, bandwidth_mib)", ref))
		return
	}
	if req.Policy != nil && *req.Policy != "" {
		if _, err := migrate.PolicyByName(*req.Policy); err != nil {
			writeErr(w, badRequest("set vm %q: %v", ref, err))
			return
		}
	}
	if req.BandwidthMiB != nil && *req.BandwidthMiB > fsm.MaxBandwidthMiB {
		writeErr(w, badRequest("set vm %q: bandwidth %d MiB/s is over the most, %d", ref, *req.BandwidthMiB, fsm.MaxBandwidthMiB))
		return
	}
	var key string
	var err error
	n.fsm.Read(func(s *fsm.State) { key, _, err = s.ResolveVM(ref) })
	switch {
	case errors.Is(err, fsm.ErrAmbiguousVM):
		writeErr(w, badRequest("set vm: %v", err))
		return
	case err != nil:
		writeErr(w, notFound("set vm: %v", err))
		return
	}
	if _, err := n.propose(r.Context(), fsm.CmdSetVM, fsm.SetVM{VM: key, Migratable: req.Migratable, Policy: req.Policy, BandwidthMiB: req.BandwidthMiB, Actor: actorOf(r), At: time.Now().UTC()}); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
