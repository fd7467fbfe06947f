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
// The leader's message already begins with the sentinel's text, so it is
// kept as it is ("command rejected: command rejected: …" read badly).
func remoteError(e *api.Error) error {
	switch e.Kind {
	case api.KindRejected:
		return &forwardedError{msg: e.Message, is: fsm.ErrRejected}
	case api.KindNoLeader:
		return &forwardedError{msg: e.Message, is: ErrNoLeader}
	}
	return e
}

// forwardedError is the leader's answer to a forwarded write: its message
// as the leader wrote it, and the sentinel that gives it its status here.
type forwardedError struct {
	msg string
	is  error
}

func (e *forwardedError) Error() string { return e.msg }

func (e *forwardedError) Unwrap() error { return e.is }

// routes builds the API. Reads are served from the local replica; writes go
// through Raft, forwarded to the leader when this node does not lead.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	// Every route names the right it needs (acl.go): rightNone for the
	// health checks, the dashboard's files and the one-time bootstrap.
	open := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, n.need(rightNone, "", h)) }
	read := func(pattern, what string, h http.HandlerFunc) { mux.Handle(pattern, n.need(fsm.PolicyRead, what, h)) }
	operate := func(pattern, what string, h http.HandlerFunc) {
		mux.Handle(pattern, n.need(fsm.PolicyOperator, what, h))
	}
	admin := func(pattern, what string, h http.HandlerFunc) { mux.Handle(pattern, n.need(fsm.PolicyAdmin, what, h)) }
	open("GET /v1/health/live", n.handleLive)
	open("GET /v1/health/ready", n.handleReady)
	read("GET /v1/status", "read the status", n.handleStatus)
	read("GET /v1/hosts", "list hosts", n.handleHosts)
	read("GET /v1/vms", "list VMs", n.handleVMs)
	operate("PUT /v1/vms/{vm}/settings", "change a VM's settings", n.handleSetVM)
	read("GET /v1/affinity", "list affinity rules", n.handleAffinity)
	admin("POST /v1/affinity", "create affinity rules", n.handleCreateAffinity)
	admin("DELETE /v1/affinity/{name}", "delete affinity rules", n.handleDeleteAffinity)
	read("GET /v1/migrations", "list migrations", n.handleMigrations)
	read("GET /v1/migrations/{id}", "read a migration", n.handleMigration)
	operate("POST /v1/migrations", "migrate", n.handleMigrate)
	operate("POST /v1/migrations/{id}/cancel", "cancel a migration", n.handleCancel)
	read("GET /v1/drains", "list drains", n.handleDrains)
	read("GET /v1/events", "read events", n.handleEvents)
	read("GET /v1/hosts/{name}/drain", "read a drain", n.handleDrainStatus)
	operate("POST /v1/hosts/{name}/drain", "drain a host", n.handleDrain)
	read("GET /v1/hosts/{name}/drain/plan", "read a drain's plan", n.handleDrainPlan)
	operate("POST /v1/hosts/{name}/drain/cancel", "cancel a drain", n.handleDrainCancel)
	operate("POST /v1/hosts/{name}/activate", "activate a host", n.handleActivate)
	read("GET /v1/clusters", "list clusters", n.handleClusters)
	read("GET /v1/clusters/{name}", "read a cluster", n.handleGetCluster)
	read("GET /v1/members", "list gossip members", n.handleMembers)
	read("GET /v1/raft/peers", "list raft peers", n.handleRaftPeers)
	read("GET /v1/clusters/{name}/balance/plan", "read a balancing plan", n.handleBalancePlan)
	admin("PUT /v1/clusters/{name}", "change a cluster", n.handlePutCluster)
	admin("POST /v1/clusters/{name}/cpu-baseline", "recompute a cluster's CPU baseline", n.handleRecomputeCPUBaseline)
	admin("POST /v1/leave", "make a host leave", n.handleLeave)
	metrics := promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})
	read("GET /metrics", "read metrics", metrics.ServeHTTP)
	admin("GET /v1/debug/pprof/{profile}", "read a runtime profile", n.handleDebugProfile)
	// The web dashboard: static files, no data of their own; the page
	// reads the API above with the operator's token.
	ui := http.StripPrefix("/ui", webui.Handler())
	open("GET /ui/", ui.ServeHTTP)
	open("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound).ServeHTTP)
	n.aclRoutes(mux)
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
