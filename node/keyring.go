package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
)

// keyringTimeout bounds one host's answer during a fan-out.
const keyringTimeout = 10 * time.Second

// keyringRoutes mounts the operators' keyring routes on public. Any meshd
// serves /v1/keyring: it fans the operation out to every alive member,
// itself included, over the host port's /v1/internal/keyring (hostRoutes),
// and reports host by host, as `consul keyring` does.
func (n *Node) keyringRoutes(public *http.ServeMux) {
	// Admin: the gossip key admits hosts to the mesh.
	public.Handle("GET /v1/keyring", n.need(fsm.PolicyAdmin, "list gossip keys", n.handleKeyring))
	public.Handle("POST /v1/keyring", n.need(fsm.PolicyAdmin, "install a gossip key", n.handleKeyring))
	public.Handle("PUT /v1/keyring", n.need(fsm.PolicyAdmin, "change the primary gossip key", n.handleKeyring))
	public.Handle("DELETE /v1/keyring", n.need(fsm.PolicyAdmin, "remove a gossip key", n.handleKeyring))
}

// keyringOps names the operations by HTTP method.
var keyringOps = map[string]string{http.MethodGet: "list", http.MethodPost: "install",
	http.MethodPut: "use", http.MethodDelete: "remove"}

// readKeyringKey reads and checks the key of an install, use or remove.
func readKeyringKey(r *http.Request) ([]byte, error) {
	what := "keyring " + keyringOps[r.Method]
	if _, err := readQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	if r.Method == http.MethodGet {
		return nil, decodeNoBody(r, what)
	}
	var req api.KeyringRequest
	if err := decodeBody(r, what, &req); err != nil {
		return nil, err
	}
	if req.Key == "" {
		return nil, badRequest("%s: field \"key\" is required", what)
	}
	key, err := gossip.KeyFromString(req.Key)
	if err != nil {
		return nil, badRequest("keyring %s: %v", keyringOps[r.Method], err)
	}
	return key, nil
}

// handleInternalKeyring runs one operation on this host's keyring only.
func (n *Node) handleInternalKeyring(w http.ResponseWriter, r *http.Request) {
	key, err := readKeyringKey(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	h, err := n.localKeyring(r.Method, key)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// localKeyring applies an operation to this host's gossip keyring and
// returns the keyring after it.
func (n *Node) localKeyring(method string, key []byte) (api.KeyringHost, error) {
	var err error
	switch method {
	case http.MethodPost:
		err = n.gossip.InstallKey(key)
	case http.MethodPut:
		err = n.gossip.UseKey(key)
	case http.MethodDelete:
		err = n.gossip.RemoveKey(key)
	}
	if err == nil {
		var kr gossip.Keyring
		if kr, err = n.gossip.Keyring(); err == nil {
			return api.KeyringHost{Host: n.cfg.Name, Primary: kr.Primary, Keys: kr.Keys}, nil
		}
	}
	switch {
	case errors.Is(err, gossip.ErrBadKey):
		return api.KeyringHost{}, badRequest("%v", err)
	case errors.Is(err, gossip.ErrPrimaryKey), errors.Is(err, gossip.ErrKeyNotInstalled), errors.Is(err, gossip.ErrNoEncryption):
		return api.KeyringHost{}, &api.Error{Message: err.Error(), Kind: api.KindRejected, Status: http.StatusConflict}
	}
	return api.KeyringHost{}, err
}

// handleKeyring fans one operation out to every alive member. use and
// remove are checked against a listing first: a key becomes primary only
// once every alive host has it (else hosts without it could no longer read
// the mesh), and a key is removed only where it is nobody's primary.
func (n *Node) handleKeyring(w http.ResponseWriter, r *http.Request) {
	key, err := readKeyringKey(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if _, err := n.gossip.Keyring(); err != nil {
		writeErr(w, &api.Error{Message: err.Error(), Kind: api.KindRejected, Status: http.StatusConflict})
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodPut || r.Method == http.MethodDelete {
		list := n.fanOutKeyring(ctx, http.MethodGet, nil)
		if err := keyringPrecondition(r.Method, gossip.KeyFingerprint(key), list); err != nil {
			writeErr(w, err)
			return
		}
	}
	resp := n.fanOutKeyring(ctx, r.Method, key)
	n.log.Info("keyring operation", "op", resp.Op, "key", resp.Key, "asked", resp.Asked, "failed", resp.Failed,
		"actor", actorOf(r))
	writeJSON(w, http.StatusOK, resp)
}

// keyringPrecondition refuses a use of a key some host lacks (or did not
// answer for) and a removal of a key that is some host's primary.
func keyringPrecondition(method, fp string, list api.KeyringResponse) error {
	var blocking []string
	for _, h := range list.Hosts {
		switch {
		case h.Error != "":
			blocking = append(blocking, h.Host+" (did not answer: "+h.Error+")")
		case method == http.MethodPut && !containsString(h.Keys, fp):
			blocking = append(blocking, h.Host)
		case method == http.MethodDelete && h.Primary == fp:
			blocking = append(blocking, h.Host)
		}
	}
	if len(blocking) == 0 {
		return nil
	}
	msg := fmt.Sprintf("keyring use %s: not installed on %s; install it everywhere first", fp, strings.Join(blocking, ", "))
	if method == http.MethodDelete {
		msg = fmt.Sprintf("keyring remove %s: it is the primary key of %s; use another key first", fp, strings.Join(blocking, ", "))
	}
	return &api.Error{Message: msg, Kind: api.KindRejected, Status: http.StatusConflict}
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// fanOutKeyring runs the operation on every alive member at once (this host
// directly, the others over their internal route) and tallies the answers.
func (n *Node) fanOutKeyring(ctx context.Context, method string, key []byte) api.KeyringResponse {
	resp := api.KeyringResponse{Op: keyringOps[method]}
	if key != nil {
		resp.Key = gossip.KeyFingerprint(key)
	}
	enc := ""
	if key != nil {
		enc = base64.StdEncoding.EncodeToString(key)
	}
	var targets []gossip.Member
	for _, m := range n.gossip.Members() {
		if m.Status == gossip.StatusAlive {
			targets = append(targets, m)
		} else {
			resp.NotAsked = append(resp.NotAsked, m.Name)
		}
	}
	resp.Hosts = make([]api.KeyringHost, len(targets))
	var wg sync.WaitGroup
	for i, m := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := n.keyringOn(ctx, m, method, key, enc)
			if err != nil {
				h = api.KeyringHost{Error: err.Error()}
			}
			h.Host = m.Name
			resp.Hosts[i] = h
		}()
	}
	wg.Wait()
	counts := map[string]*api.KeyCount{}
	for _, h := range resp.Hosts {
		resp.Asked++
		if h.Error != "" {
			resp.Failed++
			continue
		}
		for _, k := range h.Keys {
			c := counts[k]
			if c == nil {
				c = &api.KeyCount{Key: k}
				counts[k] = c
			}
			c.Installed++
			if k == h.Primary {
				c.Primary++
			}
		}
	}
	for _, c := range counts {
		resp.Keys = append(resp.Keys, *c)
	}
	sort.Slice(resp.Keys, func(i, j int) bool {
		if resp.Keys[i].Primary != resp.Keys[j].Primary {
			return resp.Keys[i].Primary > resp.Keys[j].Primary
		}
		return resp.Keys[i].Key < resp.Keys[j].Key
	})
	return resp
}

// keyringOn runs the operation on one member.
func (n *Node) keyringOn(ctx context.Context, m gossip.Member, method string, key []byte, enc string) (api.KeyringHost, error) {
	if m.Name == n.cfg.Name {
		return n.localKeyring(method, key)
	}
	if m.Facts.RaftAddr == "" {
		return api.KeyringHost{}, fmt.Errorf("no host port address gossiped yet")
	}
	cl, err := n.peers.client(m.Name, m.Facts.RaftAddr)
	if err != nil {
		return api.KeyringHost{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, keyringTimeout)
	defer cancel()
	return cl.InternalKeyring(ctx, method, enc)
}
