package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/pki"
)

// Who is calling. The API port takes operators with or without a client
// certificate; tokens authenticate them (acl.go); the routes only
// the mesh's own hosts may use (/v1/internal/*, the sim's peer endpoints)
// are on the host port, whose handshake admits a host certificate of the
// mesh CA and nothing else (hostapi.go).

// actorOf names the caller of r as the audit trail records it:
// "token:NAME" for a token's holder, "host NAME" for a verified host
// certificate, "anonymous" otherwise (the one-time bootstrap).
func actorOf(r *http.Request) string {
	if c, ok := callerOfCtx(r); ok {
		return c.actor
	}
	if host, err := peerHost(r); err == nil {
		return "host " + host
	}
	return "anonymous"
}

// peerHost is the verified host certificate's name behind r, or why there
// is none.
func peerHost(r *http.Request) (string, error) {
	switch {
	case r.TLS == nil:
		return "", errors.New("the request did not come over TLS")
	case len(r.TLS.PeerCertificates) == 0:
		return "", errors.New("the caller presented no client certificate")
	}
	return pki.PeerHost(*r.TLS)
}

// hostOnly admits only a caller with a host certificate of the mesh CA,
// and only when the host it claims to be (api.HostHeader, if it sends one)
// is the certificate's: anything else is a 403 naming why. Handlers find
// the caller with callerHost. In --dev (no TLS) it admits everyone, as
// meshd's start-up warning says.
func (n *Node) hostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.cfg.TLS == nil {
			h.ServeHTTP(w, r)
			return
		}
		host, err := peerHost(r)
		if err == nil {
			if claimed := r.Header.Get(api.HostHeader); claimed != "" && claimed != host {
				err = fmt.Errorf("it claims to be host %q but its certificate is host %q's", claimed, host)
			}
		}
		if err != nil {
			n.log.Warn("refused a host-only request", "method", r.Method, "path", r.URL.Path,
				"remote", r.RemoteAddr, "caller", actorOf(r), "why", err)
			writeJSON(w, http.StatusForbidden, api.Error{Kind: api.KindForbidden,
				Message: fmt.Sprintf("%s %s is for the mesh's hosts only (a host certificate of the mesh CA): %v", r.Method, r.URL.Path, err)})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, host)))
	})
}

type callerKey struct{}

// callerHost is the verified host a host-only route was called by ("" in
// --dev).
func callerHost(r *http.Request) string {
	s, _ := r.Context().Value(callerKey{}).(string)
	return s
}

// hostActor is the actor of a host's own writes: its leader duties, its
// migration reports, its leave.
func hostActor(name string) string { return "host " + name }

// self is this host's actor.
func (n *Node) self() string { return hostActor(n.cfg.Name) }
