package node

import (
	"log/slog"
	"net/http"
)

// The host-only HTTP routes: what one mesh host asks of another. They are
// served on the host port (streamLayer), never on the operators' API port,
// so the TLS handshake itself refuses a caller without a host certificate
// of the mesh CA: no certificate, an operator's, another CA's, an expired
// one. hostOnly still checks the host a caller claims to be.
//
// A new host-only route goes here; HostRoutes lists them for the tests.

// hostRoutes is the host port's HTTP handler.
func (n *Node) hostRoutes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range n.hostRouteTable() {
		mux.Handle(r.pattern, r.handler)
	}
	return limitBodies(n.hostOnly(mux))
}

type hostRoute struct {
	pattern string
	handler http.Handler
}

func (n *Node) hostRouteTable() []hostRoute {
	rs := []hostRoute{
		// A follower forwards the writes its clients asked for.
		{"POST /v1/internal/apply", http.HandlerFunc(n.handleInternalApply)},
	}
	// A dry run asked elsewhere samples a guest's dirty rate on its host.
	rs = append(rs, hostRoute{"POST /v1/internal/dirtyrate", http.HandlerFunc(n.handleInternalDirtyRate)})
	// One step of a keyring operation fanned out by the host an operator
	// asked.
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		rs = append(rs, hostRoute{m + " /v1/internal/keyring", http.HandlerFunc(n.handleInternalKeyring)})
	}
	// Peer endpoints of the hypervisor (the sim's cross-host calls).
	for prefix, h := range n.cfg.HTTPHandlers {
		rs = append(rs, hostRoute{prefix + "/", http.StripPrefix(prefix, h)})
	}
	return rs
}

// HostRoutes lists the host port's route patterns ("POST /v1/internal/apply",
// "/v1/sim/"): the attack matrix walks them.
func (n *Node) HostRoutes() []string {
	var out []string
	for _, r := range n.hostRouteTable() {
		out = append(out, r.pattern)
	}
	return out
}

// hostIdleTimeout closes a host's idle connection to this host port. It
// is longer than the callers' own limit (peerIdleTimeout), which closes
// first; this one bounds what a caller that keeps its connections holds on
// the leader, which every host calls.
const hostIdleTimeout = 2 * peerIdleTimeout

// serveHostAPI serves the host-only routes on the connections the host
// port hands over after their handshake.
func (n *Node) serveHostAPI() {
	n.hostAPI = &http.Server{
		Handler:           n.hostRoutes(),
		ReadHeaderTimeout: apiReadHeaderTimeout,
		ReadTimeout:       apiReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       hostIdleTimeout,
		ErrorLog:          slog.NewLogLogger(n.log.With("listener", "host").Handler(), slog.LevelWarn),
	}
	ln := n.stream.HTTP
	n.go_(func() { _ = n.hostAPI.Serve(ln) })
}

// handleHostOnlyElsewhere answers a host-only path asked on the operators'
// API port: those routes are on the host port.
func (n *Node) handleHostOnlyElsewhere(w http.ResponseWriter, r *http.Request) {
	writeErr(w, notFound("%s %s: host-only routes are served on each host's host port (--raft-port, %s here) to host certificates of the mesh CA, not on the API port",
		r.Method, r.URL.Path, n.RaftAddr()))
}
