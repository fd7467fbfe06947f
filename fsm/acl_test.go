package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func testToken(name string, p Policy, n byte) Token {
	return Token{AccessorID: "00000000-0000-4000-8000-0000000000" + string("0123456789abcdef"[n>>4]) + string("0123456789abcdef"[n&15]),
		Name: name, Policy: p, SecretHash: strings.Repeat(string("0123456789abcdef"[n&15]), 64), Created: t0, CreatedBy: "anonymous"}
}

// TestACLTokens: bootstrap works once; tokens are created only after it,
// with unique names and secrets; the last admin token cannot be deleted;
// a refused command changes nothing; a snapshot keeps the table.
func TestACLTokens(t *testing.T) {
	f := newFSM(t)
	if r := run(t, f, CmdACLTokenCreate, ACLTokenCreate{Token: testToken("early", PolicyRead, 1)}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("a token before the bootstrap: %v, want rejected", r.Err)
	}
	mgmt := testToken("management", PolicyAdmin, 2)
	must(t, f, CmdACLBootstrap, ACLBootstrap{Token: mgmt, Actor: "anonymous"})
	if r := run(t, f, CmdACLBootstrap, ACLBootstrap{Token: testToken("again", PolicyAdmin, 3)}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("a second bootstrap: %v, want rejected", r.Err)
	}
	ro := testToken("ci", PolicyRead, 4)
	must(t, f, CmdACLTokenCreate, ACLTokenCreate{Token: ro, Actor: "token:management"})
	dupName := testToken("ci", PolicyOperator, 5)
	dupSecret := testToken("other", PolicyOperator, 6)
	dupSecret.SecretHash = ro.SecretHash
	before, _ := json.Marshal(f.State())
	for what, tok := range map[string]Token{"a taken name": dupName, "a taken secret": dupSecret} {
		if r := run(t, f, CmdACLTokenCreate, ACLTokenCreate{Token: tok}); !errors.Is(r.Err, ErrRejected) {
			t.Fatalf("a token with %s: %v, want rejected", what, r.Err)
		}
	}
	if r := run(t, f, CmdACLTokenDelete, ACLTokenDelete{AccessorID: mgmt.AccessorID, At: t0}); !errors.Is(r.Err, ErrRejected) {
		t.Fatalf("deleting the last admin token: %v, want rejected", r.Err)
	}
	if after, _ := json.Marshal(f.State()); !bytes.Equal(before, after) {
		t.Fatal("refused ACL commands changed the state")
	}
	s := f.State()
	if tok, ok := s.TokenBySecretHash(ro.SecretHash); !ok || tok.Name != "ci" || !tok.Policy.Allows(PolicyRead) || tok.Policy.Allows(PolicyOperator) {
		t.Fatalf("lookup of ci by its secret: %+v %v", tok, ok)
	}
	must(t, f, CmdACLTokenDelete, ACLTokenDelete{AccessorID: ro.AccessorID, At: t0, Actor: "token:management"})
	if _, ok := f.State().TokenByName("ci"); ok {
		t.Fatal("deleted token still there")
	}
	// The table survives a snapshot, and Restore checks it.
	b, err := json.Marshal(snapshotFile{Format: SnapshotFormat, State: f.State()})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := DecodeSnapshot(b)
	if err != nil || !rs.ACL.Bootstrapped || len(rs.ACL.Tokens) != 1 {
		t.Fatalf("restored ACL: %+v, %v", rs.ACL, err)
	}
	bad := bytes.Replace(b, []byte(mgmt.SecretHash), []byte("zz"), 1)
	if _, err := DecodeSnapshot(bad); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a snapshot with a bad token: %v, want refused", err)
	}
}

func TestACLCommandsAreValidated(t *testing.T) {
	for what, c := range map[string]struct {
		t CommandType
		v any
	}{
		"bootstrap of a read token": {CmdACLBootstrap, ACLBootstrap{Token: testToken("m", PolicyRead, 1)}},
		"unknown policy":            {CmdACLTokenCreate, ACLTokenCreate{Token: testToken("m", "root", 1)}},
		"a name with a space":       {CmdACLTokenCreate, ACLTokenCreate{Token: testToken("a b", PolicyRead, 1)}},
		"a secret, not its hash":    {CmdACLTokenCreate, ACLTokenCreate{Token: Token{AccessorID: testToken("m", PolicyRead, 1).AccessorID, Name: "m", Policy: PolicyRead, SecretHash: "hunter2", Created: t0}}},
		"delete without an id":      {CmdACLTokenDelete, ACLTokenDelete{At: t0}},
	} {
		b, err := Encode(c.t, c.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", what, err)
		}
	}
}
