package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hostmesh/hostmesh/migrate"
	"github.com/hostmesh/hostmesh/pki"
)

// Wire messages between a source and a destination in another process.
type (
	reserveReq struct {
		ID     string `json:"id"`
		Source string `json:"source"`
		VM     VMSpec `json:"vm"`
	}
	idReq struct {
		ID     string `json:"id"`
		Reason string `json:"reason,omitempty"`
	}
	markReq struct {
		VM     string `json:"vm"`
		Reason string `json:"reason"`
	}
	errResp struct {
		Error string `json:"error"`
		Code  string `json:"code,omitempty"`
	}
)

// Handler serves a sim host to sources in other processes. Mount it under a
// prefix (mux.Handle("/v1/sim/", sim.Handler(h))); sources then migrate to
// "sim+http://HOST:PORT/v1/sim". It matches on the last path element, so it
// works with or without http.StripPrefix.
//
//	POST …/reserve  {id, source, vm}  hold memory for an incoming VM (or refuse)
//	POST …/commit   {id}              switch-over: the VM runs here now
//	POST …/release  {id}              the source gave up
//	POST …/mark     {vm, reason}      a post-copy broke, resumed or ended
//	POST …/abort    {vm}              abort the VM's migration job (Peer)
//	GET  …/domains                    the VMs running here (for debugging)
//	GET  …/status?name=&uuid=         one domain's status (Peer)
//
// Over TLS with a verified host certificate (meshd mounts it on its HTTPS
// API, host certificates only), the caller must be the host it names: a
// reserve's source is the certificate's host, and only the host that
// reserved may commit or release.
func Handler(h *Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		caller, err := callerOf(r)
		if err != nil {
			writeJSON(w, http.StatusForbidden, errResp{Error: err.Error()})
			return
		}
		if op == "domains" && r.Method == http.MethodGet {
			doms, _ := h.Domains(r.Context())
			writeJSON(w, http.StatusOK, doms)
			return
		}
		if op == "status" && r.Method == http.MethodGet {
			q := r.URL.Query()
			st, _ := h.Status(r.Context(), migrate.DomainRef{Name: q.Get("name"), UUID: q.Get("uuid")})
			writeJSON(w, http.StatusOK, st)
			return
		}
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, errResp{Error: "method not allowed"})
			return
		}
		switch op {
		case "reserve":
			var req reserveReq
			if err = decode(r, &req); err == nil {
				if caller != "" && req.Source != caller {
					writeJSON(w, http.StatusForbidden, errResp{Error: fmt.Sprintf("reserve from source %q by host %q: a host reserves for itself", req.Source, caller)})
					return
				}
				err = h.acceptReserve(req.ID, req.Source, req.VM)
			}
		case "commit", "release":
			var req idReq
			if err = decode(r, &req); err != nil {
				break
			}
			if src, ok := h.reservedBy(req.ID); ok && caller != "" && src != caller {
				writeJSON(w, http.StatusForbidden, errResp{Error: fmt.Sprintf("%s of %s by host %q: %s reserved it", op, req.ID, caller, src)})
				return
			}
			if op == "commit" {
				err = h.acceptCommit(req.ID, req.Reason)
			} else {
				err = h.acceptRelease(req.ID)
			}
		case "mark":
			var req markReq
			if err = decode(r, &req); err == nil {
				err = h.acceptMark(req.VM, req.Reason)
			}
		case "abort":
			var req markReq
			if err = decode(r, &req); err == nil {
				err = h.abortJob(r.Context(), migrate.DomainRef{Name: req.VM})
			}
		case "resume":
			var req markReq
			if err = decode(r, &req); err == nil {
				err = h.Resume(r.Context(), migrate.DomainRef{Name: req.VM})
			}
		default:
			writeJSON(w, http.StatusNotFound, errResp{Error: fmt.Sprintf("unknown sim operation %q", op)})
			return
		}
		if err != nil {
			status := http.StatusConflict
			if errors.As(err, new(badRequestError)) {
				status = http.StatusBadRequest
			}
			writeJSON(w, status, errResp{Error: err.Error(), Code: codeOf(err)})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

// callerOf is the verified host certificate's name behind r: "" for a
// request without TLS (meshd --dev, or a test's plain server).
func callerOf(r *http.Request) (string, error) {
	if r.TLS == nil {
		return "", nil
	}
	name, err := pki.PeerHost(*r.TLS)
	if err != nil {
		return "", fmt.Errorf("sim peer endpoints are for the mesh's hosts only: %w", err)
	}
	return name, nil
}

// decode reads a peer's request strictly (unknown fields and trailing
// data refused) and checks it (http_validate.go): a reserve of a VM with no
// name was accepted once, and that host's inventory refused for good.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequestError{fmt.Errorf("decode sim request: %w", err)}
	}
	if dec.More() {
		return badRequestError{errors.New("decode sim request: trailing data after the JSON object")}
	}
	if c, ok := v.(interface{ validate() error }); ok {
		if err := c.validate(); err != nil {
			return badRequestError{fmt.Errorf("sim request: %w", err)}
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// httpPeer is a destination host behind Handler in another process.
type httpPeer struct {
	base   string // http://HOST:PORT/PREFIX
	client *http.Client
}

func newHTTPPeer(base string, c *http.Client) httpPeer {
	return httpPeer{base: strings.TrimRight(base, "/"), client: c}
}

func (p httpPeer) name() string { return "sim+" + p.base }

func (p httpPeer) reserve(ctx context.Context, id, source string, spec VMSpec) error {
	return p.post(ctx, "reserve", reserveReq{ID: id, Source: source, VM: spec})
}
func (p httpPeer) commit(ctx context.Context, id, reason string) error {
	return p.post(ctx, "commit", idReq{ID: id, Reason: reason})
}
func (p httpPeer) release(ctx context.Context, id string) error {
	return p.post(ctx, "release", idReq{ID: id})
}
func (p httpPeer) mark(ctx context.Context, vm, reason string) error {
	return p.post(ctx, "mark", markReq{VM: vm, Reason: reason})
}

// linkDown: a host in another process keeps its link state to itself.
func (p httpPeer) linkDown() bool { return false }

// Status reads one domain of the remote host (Peer).
func (p httpPeer) Status(ctx context.Context, ref migrate.DomainRef) (migrate.DomainStatus, error) {
	q := url.Values{"name": {ref.Name}, "uuid": {ref.UUID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/status?"+q.Encode(), nil)
	if err != nil {
		return migrate.DomainStatus{}, fmt.Errorf("sim status of vm %s at %s: %w", ref, p.base, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return migrate.DomainStatus{}, fmt.Errorf("sim status of vm %s at %s: %w", ref, p.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return migrate.DomainStatus{}, fmt.Errorf("sim status of vm %s at %s: %s", ref, p.base, resp.Status)
	}
	var st migrate.DomainStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return migrate.DomainStatus{}, fmt.Errorf("sim status of vm %s at %s: %w", ref, p.base, err)
	}
	return st, nil
}

// AbortJob aborts the VM's migration job on the remote host (Peer).
func (p httpPeer) AbortJob(ctx context.Context, ref migrate.DomainRef) error {
	return p.post(ctx, "abort", markReq{VM: ref.Name})
}

// Resume resumes the VM on the remote host if it is paused (Peer).
func (p httpPeer) Resume(ctx context.Context, ref migrate.DomainRef) error {
	return p.post(ctx, "resume", markReq{VM: ref.Name})
}

// Close implements migrate.StatusReader; the HTTP client is shared.
func (p httpPeer) Close() error { return nil }

// post sends one request; a refusal comes back as the sentinel it names.
func (p httpPeer) post(ctx context.Context, op string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("sim %s at %s: %w", op, p.base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/"+op, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("sim %s at %s: %w", op, p.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("sim %s at %s: %w", op, p.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	var e errResp
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
	if e.Error == "" {
		e.Error = resp.Status
	}
	if sentinel, ok := errCodes[e.Code]; ok {
		return fmt.Errorf("sim %s at %s: %w", op, p.base, wrapRemote{msg: e.Error, sentinel: sentinel})
	}
	return fmt.Errorf("sim %s at %s: %w", op, p.base, errors.New(e.Error))
}

// wrapRemote keeps the destination's message while matching its sentinel.
type wrapRemote struct {
	msg      string
	sentinel error
}

func (w wrapRemote) Error() string { return w.msg }
func (w wrapRemote) Unwrap() error { return w.sentinel }
