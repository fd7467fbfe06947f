package node

import (
	"errors"
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// handleSetVM changes an operator's settings of one VM (meshctl vm set).
func (n *Node) handleSetVM(w http.ResponseWriter, r *http.Request) {
	var req api.VMSettingsRequest
	if err := decodeBody(r, "set vm "+r.PathValue("vm"), &req); err != nil {
		writeErr(w, err)
		return
	}
	ref := r.PathValue("vm")
	if req.Migratable == nil {
		writeErr(w, badRequest("set vm %q: no setting given (migratable)", ref))
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
	if _, err := n.propose(r.Context(), fsm.CmdSetVM, fsm.SetVM{VM: key, Migratable: req.Migratable, Actor: actorOf(r), At: time.Now().UTC()}); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
