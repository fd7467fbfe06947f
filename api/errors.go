package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// Error is meshd's JSON answer to a request it refused or could not serve.
// Kind lets callers branch without parsing the message; Checks name the
// prerequisite checks that refused a migration.
type Error struct {
	Status  int           `json:"-"`
	Message string        `json:"error"`
	Kind    string        `json:"kind"`
	Checks  []CheckResult `json:"checks,omitempty"`
	// Right is the right a refused call needed (401, 403): read,
	// operator, admin, or host for host-only routes.
	Right string `json:"right,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Error kinds.
const (
	KindBadRequest   = "bad_request"  // 400: the request itself is wrong
	KindNotFound     = "not_found"    // 404: no such host, VM, migration
	KindRejected     = "rejected"     // 409: the state does not allow it
	KindRefused      = "refused"      // 409: prerequisite checks failed (Checks)
	KindUnauthorized = "unauthorized" // 401: no token, or one the mesh does not know
	KindForbidden    = "forbidden"    // 403: the caller's token (or certificate) lacks the right
	KindNoLeader     = "no_leader"    // 503: the mesh has no leader now
	KindInternal     = "internal"     // 500
	// KindBusy (429, with Retry-After): too many blocking reads wait on
	// this host; retry after the time it gives.
	KindBusy = "busy"
)

// ConnError is returned when meshd could not be reached or its answer not
// read: nothing was done (meshctl exits 3).
type ConnError struct {
	URL string
	Err error
}

func (e *ConnError) Error() string {
	msg := fmt.Sprintf("cannot reach meshd at %s (set --addr or MESH_ADDR): %v", e.URL, e.Err)
	var unknownCA x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(e.Err, &unknownCA), errors.As(e.Err, &verify):
		msg += " (is --cacert / MESH_CACERT the mesh's CA certificate, and the address one of the host's certificate names?)"
	case strings.Contains(e.Err.Error(), "server gave HTTP response to HTTPS client"):
		msg += " (this meshd runs without TLS (--dev): write the address as http://HOST:PORT)"
	}
	return msg
}

func (e *ConnError) Unwrap() error { return e.Err }
