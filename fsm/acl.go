package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ACL tokens, as Consul and Nomad have them: the mesh's tokens are part of
// the replicated state, so every host checks a caller's token against the
// same table. Only a token's SHA-256 is replicated; the secret leaves the
// host that made it once, in the answer to its creator.
//
// `meshctl acl bootstrap` creates the first (management) token once; after
// that only a token with the admin right creates and deletes tokens. The
// rights are ordered: read < operator < admin (see Policy).

// The ACL commands. Values are persisted in the Raft log: never renumber.
// They start at 32, clear of the core commands numbered from 1 in
// commands.go, so the two lists grow without meeting.
const (
	CmdACLBootstrap   CommandType = 32
	CmdACLTokenCreate CommandType = 33
	CmdACLTokenDelete CommandType = 34
)

func init() {
	for t, c := range map[CommandType]struct {
		name string
		h    handler
		v    validator
	}{
		CmdACLBootstrap:   {"ACLBootstrap", applyACLBootstrap, validatorOf[ACLBootstrap]()},
		CmdACLTokenCreate: {"ACLTokenCreate", applyACLTokenCreate, validatorOf[ACLTokenCreate]()},
		CmdACLTokenDelete: {"ACLTokenDelete", applyACLTokenDelete, validatorOf[ACLTokenDelete]()},
	} {
		if _, taken := handlers[t]; taken {
			// Two commands sharing a type byte would apply one as the
			// other: refuse to start rather than corrupt a log.
			panic(fmt.Sprintf("fsm: command type %d of %s is taken by %s", t, c.name, commandNames[t]))
		}
		commandNames[t], handlers[t], validators[t] = c.name, c.h, c.v
	}
}

// Policy is a token's right. Each includes the ones below it.
type Policy string

// The policies.
const (
	// PolicyRead lists: hosts, VMs, migrations, drains, clusters, events,
	// metrics.
	PolicyRead Policy = "read"
	// PolicyOperator also migrates, cancels, drains and activates hosts.
	PolicyOperator Policy = "operator"
	// PolicyAdmin also changes clusters, makes hosts leave, rotates the
	// gossip keyring and manages tokens. The management token has it.
	PolicyAdmin Policy = "admin"
)

// Rank orders policies: 0 for an unknown one.
func (p Policy) Rank() int {
	switch p {
	case PolicyRead:
		return 1
	case PolicyOperator:
		return 2
	case PolicyAdmin:
		return 3
	}
	return 0
}

// Allows reports whether a token of policy p has the right need.
func (p Policy) Allows(need Policy) bool { return p.Rank() > 0 && p.Rank() >= need.Rank() }

// Token is one ACL token as the state holds it: never its secret.
type Token struct {
	// AccessorID names the token in lists and deletes (a UUID); it is no
	// credential.
	AccessorID string `json:"accessor_id"`
	Name       string `json:"name"`
	Policy     Policy `json:"policy"`
	// SecretHash is the hex SHA-256 of the secret (HashSecret).
	SecretHash string    `json:"secret_hash"`
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by,omitempty"`
}

// ACL is the replicated ACL table.
type ACL struct {
	// Bootstrapped is set by the first ACLBootstrap and never cleared:
	// bootstrap works once.
	Bootstrapped bool `json:"bootstrapped,omitempty"`
	// Tokens by accessor ID.
	Tokens map[string]*Token `json:"tokens,omitempty"`
}

func (a ACL) clone() ACL {
	c := ACL{Bootstrapped: a.Bootstrapped}
	if a.Tokens != nil {
		c.Tokens = make(map[string]*Token, len(a.Tokens))
		for k, t := range a.Tokens {
			v := *t
			c.Tokens[k] = &v
		}
	}
	return c
}

// TokenBySecretHash finds the token whose secret hashes to h.
func (s *State) TokenBySecretHash(h string) (*Token, bool) {
	for _, t := range s.ACL.Tokens {
		if t.SecretHash == h {
			return t, true
		}
	}
	return nil, false
}

// TokenByName finds a token by its name.
func (s *State) TokenByName(name string) (*Token, bool) {
	for _, t := range s.ACL.Tokens {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// SortedTokens lists the tokens by name.
func (s *State) SortedTokens() []Token {
	out := make([]Token, 0, len(s.ACL.Tokens))
	for _, k := range slices.Sorted(maps.Keys(s.ACL.Tokens)) {
		out = append(out, *s.ACL.Tokens[k])
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ACLBootstrap creates the first token, with the admin policy; refused
// once the ACLs were bootstrapped.
type ACLBootstrap struct {
	Token Token  `json:"token"`
	Actor string `json:"actor,omitempty"`
}

// ACLTokenCreate adds a token.
type ACLTokenCreate struct {
	Token Token  `json:"token"`
	Actor string `json:"actor,omitempty"`
}

// ACLTokenDelete removes a token by accessor ID. The last admin token
// cannot be deleted: nobody could manage tokens after it.
type ACLTokenDelete struct {
	AccessorID string    `json:"accessor_id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor,omitempty"`
}

func (t *Token) check(c *checks) {
	c.uuid("accessor id", t.AccessorID)
	if t.AccessorID == "" {
		c.fail("token: no accessor id")
	}
	c.host("token name", t.Name)
	if t.Policy.Rank() == 0 {
		c.fail("token %q: policy %q: want read, operator or admin", t.Name, t.Policy)
	}
	if len(t.SecretHash) != 64 || strings.Trim(t.SecretHash, "0123456789abcdef") != "" {
		c.fail("token %q: the secret's hash is not a hex SHA-256", t.Name)
	}
	if t.Created.IsZero() {
		c.fail("token %q: no creation time", t.Name)
	}
	c.actor(t.CreatedBy)
}

func (b *ACLBootstrap) validate() error {
	var c checks
	b.Token.check(&c)
	if b.Token.Policy != PolicyAdmin {
		c.fail("bootstrap token %q: policy %q, want admin", b.Token.Name, b.Token.Policy)
	}
	c.actor(b.Actor)
	return c.err
}

func (t *ACLTokenCreate) validate() error {
	var c checks
	t.Token.check(&c)
	c.actor(t.Actor)
	return c.err
}

func (d *ACLTokenDelete) validate() error {
	var c checks
	c.uuid("accessor id", d.AccessorID)
	if d.AccessorID == "" {
		c.fail("no accessor id")
	}
	c.actor(d.Actor)
	return c.err
}

// addToken checks t against the table and adds it.
func (s *State) addToken(t Token) error {
	if _, ok := s.ACL.Tokens[t.AccessorID]; ok {
		return rejectf("token %q: accessor id %s is taken", t.Name, t.AccessorID)
	}
	if _, ok := s.TokenByName(t.Name); ok {
		return rejectf("token %q: a token of that name exists", t.Name)
	}
	if _, ok := s.TokenBySecretHash(t.SecretHash); ok {
		return rejectf("token %q: its secret is another token's", t.Name)
	}
	if s.ACL.Tokens == nil {
		s.ACL.Tokens = map[string]*Token{}
	}
	s.ACL.Tokens[t.AccessorID] = &t
	return nil
}

func applyACLBootstrap(s *State, data []byte) (any, error) {
	var c ACLBootstrap
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if s.ACL.Bootstrapped {
		return nil, rejectf("ACLs are bootstrapped already (bootstrap works once; an admin token creates the others)")
	}
	if err := s.addToken(c.Token); err != nil {
		return nil, err
	}
	s.ACL.Bootstrapped = true
	s.tick(c.Token.Created)
	s.emit(Event{Time: c.Token.Created, Actor: c.Actor, Kind: EventACLBootstrap,
		Message: fmt.Sprintf("ACLs bootstrapped: management token %q (%s)", c.Token.Name, c.Token.AccessorID)})
	return c.Token.AccessorID, nil
}

func applyACLTokenCreate(s *State, data []byte) (any, error) {
	var c ACLTokenCreate
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if !s.ACL.Bootstrapped {
		return nil, rejectf("token %q: ACLs are not bootstrapped (meshctl acl bootstrap)", c.Token.Name)
	}
	if err := s.addToken(c.Token); err != nil {
		return nil, err
	}
	s.tick(c.Token.Created)
	s.emit(Event{Time: c.Token.Created, Actor: c.Actor, Kind: EventACLTokenCreated,
		Message: fmt.Sprintf("token %q (%s, policy %s) created", c.Token.Name, c.Token.AccessorID, c.Token.Policy)})
	return c.Token.AccessorID, nil
}

func applyACLTokenDelete(s *State, data []byte) (any, error) {
	var c ACLTokenDelete
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	t, ok := s.ACL.Tokens[c.AccessorID]
	if !ok {
		return nil, rejectf("token %s: no such token", c.AccessorID)
	}
	if t.Policy == PolicyAdmin {
		admins := 0
		for _, o := range s.ACL.Tokens {
			if o.Policy == PolicyAdmin {
				admins++
			}
		}
		if admins == 1 {
			return nil, rejectf("token %q: it is the last admin token; create another admin token first", t.Name)
		}
	}
	delete(s.ACL.Tokens, c.AccessorID)
	s.tick(c.At)
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventACLTokenDeleted,
		Message: fmt.Sprintf("token %q (%s, policy %s) deleted", t.Name, t.AccessorID, t.Policy)})
	return t.Name, nil
}

// The ACL event kinds.
const (
	EventACLBootstrap    = "acl.bootstrap"
	EventACLTokenCreated = "acl.token-created"
	EventACLTokenDeleted = "acl.token-deleted"
)

// checkACL adds the ACL table's problems to a snapshot's Check.
func (s *State) checkACL(bad func(string, ...any)) {
	for k, t := range s.ACL.Tokens {
		if t == nil {
			bad("token %q is null", k)
			continue
		}
		var c checks
		t.check(&c)
		if c.err != nil {
			bad("token %q: %v", k, c.err)
		} else if t.AccessorID != k {
			bad("token %q has accessor id %q", k, t.AccessorID)
		}
	}
	if len(s.ACL.Tokens) > 0 && !s.ACL.Bootstrapped {
		bad("tokens without a bootstrap")
	}
}
