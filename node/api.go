package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/webui"
)

// The JSON body of every failed API call is an api.Error: its Kind lets
// clients (and forwarding followers) branch without parsing text.

// remoteError turns a forwarded error body back into an error that
// errors.Is recognises on this side.
func remoteError(e *api.Error) error {
	switch e.Kind {
	case api.KindRejected:
		return fmt.Errorf("%w: %s", fsm.ErrRejected, e.Message)
	case api.KindNoLeader:
		return fmt.Errorf("%w: %s", ErrNoLeader, e.Message)
	}
	return e
}

// routes builds the API. Reads are served from the local replica; writes go
// through Raft, forwarded to the leader when this node does not lead.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health/live", n.handleLive)
	mux.HandleFunc("GET /v1/health/ready", n.handleReady)
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("GET /v1/hosts", n.handleHosts)
	mux.HandleFunc("GET /v1/vms", n.handleVMs)
	mux.HandleFunc("PUT /v1/vms/{vm}/settings", n.handleSetVM)
	mux.HandleFunc("GET /v1/affinity", n.handleAffinity)
	mux.HandleFunc("POST /v1/affinity", n.handleCreateAffinity)
	mux.HandleFunc("DELETE /v1/affinity/{name}", n.handleDeleteAffinity)
	mux.HandleFunc("GET /v1/migrations", n.handleMigrations)
	mux.HandleFunc("GET /v1/migrations/{id}", n.handleMigration)
	mux.HandleFunc("POST /v1/migrations", n.handleMigrate)
	mux.HandleFunc("POST /v1/migrations/{id}/cancel", n.handleCancel)
	mux.HandleFunc("GET /v1/drains", n.handleDrains)
	mux.HandleFunc("GET /v1/events", n.handleEvents)
	mux.HandleFunc("GET /v1/hosts/{name}/drain", n.handleDrainStatus)
	mux.HandleFunc("POST /v1/hosts/{name}/drain", n.handleDrain)
	mux.HandleFunc("GET /v1/hosts/{name}/drain/plan", n.handleDrainPlan)
	mux.HandleFunc("POST /v1/hosts/{name}/drain/cancel", n.handleDrainCancel)
	mux.HandleFunc("POST /v1/hosts/{name}/activate", n.handleActivate)
	mux.HandleFunc("GET /v1/clusters/{name}", n.handleGetCluster)
	mux.HandleFunc("PUT /v1/clusters/{name}", n.handlePutCluster)
	mux.HandleFunc("POST /v1/leave", n.handleLeave)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	// The web dashboard: static files, no data of their own; the page
	// reads the API above with the operator's token.
	mux.Handle("GET /ui/", http.StripPrefix("/ui", webui.Handler()))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	n.keyringRoutes(mux)
	// Host-only routes are not served here: they are on the host port
	// (hostRoutes), where a caller without a host certificate of the mesh
	// CA is refused at the TLS handshake. Whoever asks here is told so.
	for _, prefix := range []string{"/v1/internal/", "/v1/sim/"} {
		mux.HandleFunc(prefix, n.handleHostOnlyElsewhere)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeErr maps an error to a status and kind: bad input 400, unknown
// objects 404, refusals and rejected commands 409, no leader 503.
func writeErr(w http.ResponseWriter, err error) {
	var ae *api.Error
	var refused *migrate.RefusedError
	switch {
	case errors.As(err, &ae):
		st := ae.Status
		if st == 0 {
			st = http.StatusInternalServerError
		}
		writeJSON(w, st, ae)
	case errors.As(err, &refused):
		writeJSON(w, http.StatusConflict, api.Error{Message: err.Error(), Kind: api.KindRefused, Checks: checkResults(refused.Failed)})
	case errors.Is(err, fsm.ErrRejected), errors.Is(err, migrate.ErrNoHost):
		writeJSON(w, http.StatusConflict, api.Error{Message: err.Error(), Kind: api.KindRejected})
	case errors.Is(err, fsm.ErrMalformed):
		writeJSON(w, http.StatusBadRequest, api.Error{Message: err.Error(), Kind: api.KindBadRequest})
	case errors.Is(err, ErrNoLeader):
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Message: err.Error(), Kind: api.KindNoLeader})
	default:
		writeJSON(w, http.StatusInternalServerError, api.Error{Message: err.Error(), Kind: api.KindInternal})
	}
}

func checkResults(rs []migrate.CheckResult) []api.CheckResult {
	out := make([]api.CheckResult, len(rs))
	for i, r := range rs {
		out[i] = api.CheckResult{Name: r.Name, OK: r.OK, Message: r.Message}
	}
	return out
}

func badRequest(format string, args ...any) error {
	return &api.Error{Message: fmt.Sprintf(format, args...), Kind: api.KindBadRequest, Status: http.StatusBadRequest}
}

func notFound(format string, args ...any) error {
	return &api.Error{Message: fmt.Sprintf(format, args...), Kind: api.KindNotFound, Status: http.StatusNotFound}
}

func (n *Node) handleInternalApply(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, fsm.MaxEntryBytes+1))
	if err != nil {
		writeErr(w, badRequest("read command: %v", err))
		return
	}
	if len(data) > fsm.MaxEntryBytes {
		writeErr(w, &api.Error{Message: fmt.Sprintf("command over the limit of %d bytes", fsm.MaxEntryBytes),
			Kind: api.KindBadRequest, Status: http.StatusRequestEntityTooLarge})
		return
	}
	// Bad input is a 400 from any host, leader or not.
	if err := fsm.Validate(data); err != nil {
		writeErr(w, err)
		return
	}
	if !n.IsLeader() {
		// One hop only: a follower that is not the leader any more says so and
		// the sender retries, rather than forwarding in a loop.
		writeErr(w, fmt.Errorf("%w: %s is not the leader", ErrNoLeader, n.cfg.Name))
		return
	}
	v, idx, err := n.applyValidated(data)
	if idx > 0 {
		w.Header().Set(indexHeader, strconv.FormatUint(idx, 10))
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v)
}
