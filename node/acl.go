package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// ACLs are always on. Every operator route of the API port needs a right
// (read < operator < admin) that the caller's token must have; the token
// comes as `Authorization: Bearer SECRET` and is looked up, by the
// secret's SHA-256, in the replicated token table (fsm/acl.go). The
// answers: no token, or one the mesh does not know, 401; a token without
// the right, 403; both JSON naming the right needed.
//
// Before the mesh has any token (not bootstrapped), operators can reach
// only what needs no right: the health checks, the dashboard's static
// files, and POST /v1/acl/bootstrap, which creates the management token
// once, as `consul acl bootstrap` does. A mesh started with
// --initial-management-token-file has that token from its first leader on
// and refuses bootstrap.
//
// A caller with a host certificate of the mesh CA acts as that host
// ("host h2") with every right: the mesh's own hosts already write any
// command through the host port. An operator's client certificate grants
// nothing by itself: it needs a token like everyone else.

// rightNone marks a route every caller may use.
const rightNone fsm.Policy = ""

// initialTokenName names the token of --initial-management-token-file.
const initialTokenName = "initial-management"

// caller is who sent a request and what it may do.
type caller struct {
	actor  string     // "token:NAME", "host NAME", "anonymous"
	policy fsm.Policy // rightNone: no rights
	token  *fsm.Token // the caller's token, if it sent one
}

type callerCtxKey struct{}

// callerOfCtx is the caller the ACL check found for r (anonymous when the
// route needs no right and the caller sent nothing usable).
func callerOfCtx(r *http.Request) (caller, bool) {
	c, ok := r.Context().Value(callerCtxKey{}).(caller)
	return c, ok
}

// HashSecret is the hex SHA-256 of a token's secret: what the state keeps.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// newSecret is a token secret: 192 random bits, hex.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newAccessorID is a random UUID (version 4).
func newAccessorID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token accessor id: %w", err)
	}
	return uuidOf(b), nil
}

// uuidOf formats 16 bytes as a version-4 UUID.
func uuidOf(b []byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// CheckInitialToken says why a secret cannot be an initial management
// token: it must be long enough to guess no sooner than a generated one,
// and printable without spaces (it travels in an HTTP header).
func CheckInitialToken(secret string) error {
	if len(secret) < 16 {
		return fmt.Errorf("initial management token: %d characters, want at least 16 (meshctl acl bootstrap makes 48)", len(secret))
	}
	for _, r := range secret {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("initial management token: only printable ASCII without spaces")
		}
	}
	return nil
}

// bearerOf is the token r sends, "" for none.
func bearerOf(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", nil
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("the Authorization header is not \"Bearer TOKEN\"")
	}
	return strings.TrimSpace(tok), nil
}

// identify finds the caller of r. It fails (401) only for a credential it
// cannot accept: a malformed header or an unknown token. No credential at
// all is an anonymous caller without rights.
func (n *Node) identify(r *http.Request) (caller, error) {
	if n.cfg.TLS != nil {
		if host, err := peerHost(r); err == nil {
			if claimed := r.Header.Get(api.HostHeader); claimed != "" && claimed != host {
				return caller{}, fmt.Errorf("the caller claims to be host %q but its certificate is host %q's", claimed, host)
			}
			return caller{actor: hostActor(host), policy: fsm.PolicyAdmin}, nil
		}
	}
	secret, err := bearerOf(r)
	if err != nil {
		return caller{}, err
	}
	if secret == "" {
		return caller{actor: "anonymous"}, nil
	}
	h := HashSecret(secret)
	var found *fsm.Token
	var bootstrapped bool
	n.fsm.Read(func(s *fsm.State) {
		bootstrapped = s.ACL.Bootstrapped
		if t, ok := s.TokenBySecretHash(h); ok {
			v := *t
			found = &v
		}
	})
	if found != nil {
		return caller{actor: "token:" + found.Name, policy: found.Policy, token: found}, nil
	}
	// The initial management token is good from the start, before the
	// leader wrote it to the table; once the table exists, only the table
	// counts (a deleted initial token stays deleted).
	if n.initialHash != "" && !bootstrapped && subtle.ConstantTimeCompare([]byte(h), []byte(n.initialHash)) == 1 {
		return caller{actor: "token:" + initialTokenName, policy: fsm.PolicyAdmin}, nil
	}
	return caller{}, fmt.Errorf("the token is not one of this mesh's (deleted, mistyped, or another mesh's)")
}

// need wraps a route that needs right (rightNone: anyone); what says what
// the route does, for the refusal ("migrate", "list hosts").
func (n *Node) need(right fsm.Policy, what string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := n.identify(r)
		switch {
		case err != nil && right == rightNone:
			c = caller{actor: "anonymous"}
		case err != nil:
			n.refuse(w, r, http.StatusUnauthorized, right, fmt.Sprintf("permission denied: %s right needed to %s: %v", right, what, err))
			return
		case !c.policy.Allows(right) && right != rightNone:
			if c.policy == rightNone {
				msg := fmt.Sprintf("permission denied: %s right needed to %s: no token (send Authorization: Bearer TOKEN; meshctl --token, MESH_TOKEN or MESH_TOKEN_FILE)", right, what)
				if !n.aclBootstrapped() {
					msg += "; this mesh has no tokens yet: create the management token with meshctl acl bootstrap"
				}
				n.refuse(w, r, http.StatusUnauthorized, right, msg)
				return
			}
			n.refuse(w, r, http.StatusForbidden, right, fmt.Sprintf("permission denied: %s right needed to %s (%s has %s)", right, what, c.actor, c.policy))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerCtxKey{}, c)))
	})
}

func (n *Node) refuse(w http.ResponseWriter, r *http.Request, status int, right fsm.Policy, msg string) {
	kind := api.KindForbidden
	if status == http.StatusUnauthorized {
		kind = api.KindUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="hostmesh"`)
	}
	n.log.Info("refused an API request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
		"status", status, "right", string(right), "why", msg)
	writeJSON(w, status, api.Error{Message: msg, Kind: kind, Right: string(right)})
}

func (n *Node) aclBootstrapped() bool {
	var b bool
	n.fsm.Read(func(s *fsm.State) { b = s.ACL.Bootstrapped })
	return b
}

// initialToken is the table entry of the initial management token: its
// accessor ID derives from the secret's hash, so every leader proposes
// the same entry.
func (n *Node) initialToken() fsm.Token {
	sum := sha256.Sum256([]byte("accessor:" + n.initialHash))
	return fsm.Token{AccessorID: uuidOf(sum[:16]), Name: initialTokenName, Policy: fsm.PolicyAdmin,
		SecretHash: n.initialHash, Created: time.Now().UTC(), CreatedBy: n.self()}
}

// writeInitialToken is a leader's step: a mesh started with an initial
// management token and without an ACL table gets it as its bootstrap.
func (n *Node) writeInitialToken(ctx context.Context) {
	if n.initialHash == "" || n.aclBootstrapped() {
		return
	}
	t := n.initialToken()
	if n.try(ctx, fsm.CmdACLBootstrap, fsm.ACLBootstrap{Token: t, Actor: n.self()}) {
		n.log.Info("ACLs bootstrapped with the initial management token", "accessor_id", t.AccessorID)
	}
}

func apiToken(t fsm.Token) api.ACLToken {
	return api.ACLToken{AccessorID: t.AccessorID, Name: t.Name, Policy: string(t.Policy), Created: t.Created, CreatedBy: t.CreatedBy}
}

// aclRoutes mounts the ACL API.
func (n *Node) aclRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/acl/bootstrap", n.need(rightNone, "bootstrap the ACLs", n.handleACLBootstrap))
	mux.Handle("GET /v1/acl/tokens", n.need(fsm.PolicyAdmin, "list tokens", n.handleACLTokens))
	mux.Handle("POST /v1/acl/tokens", n.need(fsm.PolicyAdmin, "create tokens", n.handleACLTokenCreate))
	mux.Handle("DELETE /v1/acl/tokens/{id}", n.need(fsm.PolicyAdmin, "delete tokens", n.handleACLTokenDelete))
	mux.Handle("GET /v1/acl/token/self", n.need(fsm.PolicyRead, "read its own token", n.handleACLTokenSelf))
}

func (n *Node) handleACLBootstrap(w http.ResponseWriter, r *http.Request) {
	if err := decodeNoBody(r, "acl bootstrap"); err != nil {
		writeErr(w, err)
		return
	}
	if n.initialHash != "" {
		writeErr(w, fmt.Errorf("%w: this mesh's management token is the one of --initial-management-token-file", fsm.ErrRejected))
		return
	}
	if n.aclBootstrapped() {
		writeErr(w, fmt.Errorf("%w: ACLs are bootstrapped already (bootstrap works once; an admin token creates the others)", fsm.ErrRejected))
		return
	}
	n.createToken(w, r, fsm.CmdACLBootstrap, "management", fsm.PolicyAdmin)
}

func (n *Node) handleACLTokens(w http.ResponseWriter, r *http.Request) {
	var out []api.ACLToken
	n.fsm.Read(func(s *fsm.State) {
		for _, t := range s.SortedTokens() {
			out = append(out, apiToken(t))
		}
	})
	if out == nil {
		out = []api.ACLToken{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleACLTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req api.ACLTokenRequest
	if err := decodeBody(r, "token", &req); err != nil {
		writeErr(w, err)
		return
	}
	p := fsm.Policy(req.Policy)
	if p.Rank() == 0 {
		writeErr(w, badRequest("policy %q: want read, operator or admin", req.Policy))
		return
	}
	if req.Name == "" {
		writeErr(w, badRequest("a token needs a name"))
		return
	}
	n.createToken(w, r, fsm.CmdACLTokenCreate, req.Name, p)
}

// createToken makes a secret, proposes its hash and answers with the
// secret: the only time it leaves this host.
func (n *Node) createToken(w http.ResponseWriter, r *http.Request, ct fsm.CommandType, name string, p fsm.Policy) {
	secret, err := newSecret()
	if err != nil {
		writeErr(w, err)
		return
	}
	id, err := newAccessorID()
	if err != nil {
		writeErr(w, err)
		return
	}
	actor := actorOf(r)
	t := fsm.Token{AccessorID: id, Name: name, Policy: p, SecretHash: HashSecret(secret), Created: time.Now().UTC(), CreatedBy: actor}
	var payload any = fsm.ACLTokenCreate{Token: t, Actor: actor}
	if ct == fsm.CmdACLBootstrap {
		payload = fsm.ACLBootstrap{Token: t, Actor: actor}
	}
	if _, err := n.propose(r.Context(), ct, payload); err != nil {
		writeErr(w, err)
		return
	}
	n.log.Info("ACL token created", "name", name, "policy", string(p), "accessor_id", id, "actor", actor)
	out := apiToken(t)
	out.SecretID = secret
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleACLTokenDelete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("id")
	var t *fsm.Token
	n.fsm.Read(func(s *fsm.State) {
		if v, ok := s.ACL.Tokens[key]; ok {
			c := *v
			t = &c
		} else if v, ok := s.TokenByName(key); ok {
			c := *v
			t = &c
		}
	})
	if t == nil {
		writeErr(w, notFound("token %q: no token of that accessor id or name", key))
		return
	}
	actor := actorOf(r)
	if _, err := n.propose(r.Context(), fsm.CmdACLTokenDelete, fsm.ACLTokenDelete{AccessorID: t.AccessorID, At: time.Now().UTC(), Actor: actor}); err != nil {
		writeErr(w, err)
		return
	}
	n.log.Info("ACL token deleted", "name", t.Name, "accessor_id", t.AccessorID, "actor", actor)
	writeJSON(w, http.StatusOK, apiToken(*t))
}

func (n *Node) handleACLTokenSelf(w http.ResponseWriter, r *http.Request) {
	c, _ := callerOfCtx(r)
	if c.token != nil {
		writeJSON(w, http.StatusOK, apiToken(*c.token))
		return
	}
	writeJSON(w, http.StatusOK, api.ACLToken{Name: strings.TrimPrefix(c.actor, "token:"), Policy: string(c.policy)})
}
