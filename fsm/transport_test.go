package fsm

import (
	"errors"
	"strings"
	"testing"
)

// TestMigrationTransport: a cluster migrates over TLS unless plain was set on
// purpose; an entry without the field (written before it existed) means TLS,
// and an unknown transport is refused and changes nothing.
func TestMigrationTransport(t *testing.T) {
	f := New()
	if c := f.State().Cluster("c1"); c.MigrationTransport != TransportTLS || c.PlainMigrations() {
		t.Fatalf("unconfigured cluster: transport %q, want %q", c.MigrationTransport, TransportTLS)
	}
	old := DefaultCluster("c1")
	old.MigrationTransport = ""
	must(t, f, CmdSetCluster, SetCluster{Cluster: old})
	if c := f.State().Cluster("c1"); c.PlainMigrations() {
		t.Fatalf("cluster set without a transport: %q migrates plain, want TLS", c.MigrationTransport)
	}
	plain := DefaultCluster("c1")
	plain.MigrationTransport = TransportPlain
	must(t, f, CmdSetCluster, SetCluster{Cluster: plain})
	if c := f.State().Cluster("c1"); !c.PlainMigrations() {
		t.Fatalf("cluster set to plain: transport %q", c.MigrationTransport)
	}
	bad := DefaultCluster("c1")
	bad.MigrationTransport = "ssh"
	r := run(t, f, CmdSetCluster, SetCluster{Cluster: bad})
	if r.Err == nil || !strings.Contains(r.Err.Error(), `migration transport "ssh"`) {
		t.Fatalf("transport ssh: got %v, want a refusal naming it", r.Err)
	}
	if c := f.State().Cluster("c1"); c.MigrationTransport != TransportPlain {
		t.Fatalf("after the refused entry: transport %q, want it unchanged (%q)", c.MigrationTransport, TransportPlain)
	}
}

// TestValidateMigrationTransport: an unknown transport never enters the log;
// tls, plain and the empty value of older writers do.
func TestValidateMigrationTransport(t *testing.T) {
	for tr, ok := range map[string]bool{"": true, TransportTLS: true, TransportPlain: true, "ssh": false, "TLS": false} {
		cl := DefaultCluster("c1")
		cl.MigrationTransport = tr
		err := Validate(mustEncode(t, CmdSetCluster, SetCluster{Cluster: cl}))
		if ok && err != nil {
			t.Errorf("transport %q: %v", tr, err)
		}
		if !ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("transport %q: got %v, want ErrMalformed", tr, err)
		}
	}
}
