package cli

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/pki"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(append([]string{"meshctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTLSCommandsCreateAMeshPKI(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := run("tls", "ca", "create", "--dir", dir); code != 0 || !strings.Contains(out, "hostmesh-ca.pem") {
		t.Fatalf("tls ca create: exit %d\n%s%s", code, out, errOut)
	}
	// Flags after the subcommand's name, as users type them.
	if code, out, errOut := run("tls", "cert", "create", "--host", "h1", "--ip", "10.0.0.11", "--dns", "h1.lan", "--dir", dir); code != 0 {
		t.Fatalf("tls cert create --host: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run("tls", "cert", "create", "--dir", dir, "--client", "alice"); code != 0 || !strings.Contains(out, "MESH_CLIENT_CERT") {
		t.Fatalf("tls cert create --client: exit %d\n%s%s", code, out, errOut)
	}
	for name, mode := range map[string]os.FileMode{"hostmesh-ca.pem": 0o644, "hostmesh-ca-key.pem": 0o600,
		"h1.pem": 0o644, "h1-key.pem": 0o600, "alice.pem": 0o644, "alice-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %o, want %o", name, err, fi.Mode().Perm(), mode)
		}
	}
	ht, err := pki.LoadHostTLS(filepath.Join(dir, "hostmesh-ca.pem"), filepath.Join(dir, "h1.pem"), filepath.Join(dir, "h1-key.pem"))
	if err != nil || ht.Name != "h1" {
		t.Fatalf("meshd would not load h1's files: %v", err)
	}
	leaf := ht.Certificate().Leaf
	if !strings.Contains(strings.Join(leaf.DNSNames, " "), "h1.lan") || len(leaf.IPAddresses) != 2 {
		t.Fatalf("h1's SANs: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pki.HostNameOf(pair.Leaf); ok {
		t.Fatal("alice's certificate is a host certificate")
	}

	// Nothing is overwritten; bad usage exits 2.
	before, _ := os.ReadFile(filepath.Join(dir, "h1-key.pem"))
	for _, c := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"tls", "ca", "create", "--dir", dir}, 1, "refusing to overwrite"},
		{[]string{"tls", "cert", "create", "--host", "h1", "--dir", dir}, 1, "refusing to overwrite"},
		{[]string{"tls", "cert", "create", "--dir", dir}, 2, "exactly one of --host NAME and --client NAME"},
		{[]string{"tls", "cert", "create", "--host", "h2", "--client", "bob", "--dir", dir}, 2, "exactly one of"},
		{[]string{"tls", "cert", "create", "--host", "h2", "--ip", "10.0.0.300", "--dir", dir}, 2, "not an IP address"},
		{[]string{"tls", "cert", "create", "--host", "../h2", "--dir", dir}, 2, "not a DNS label"},
		{[]string{"tls", "cert", "create", "--client", "bob", "--ip", "10.0.0.1", "--dir", dir}, 2, "for host certificates"},
		{[]string{"tls", "cert", "create", "--host", "h2", "--dir", t.TempDir()}, 1, "meshctl tls ca create"},
	} {
		code, _, errOut := run(c.args...)
		if code != c.code || !strings.Contains(errOut, c.say) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", c.args, code, errOut, c.code, c.say)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "h1-key.pem")); !bytes.Equal(before, after) {
		t.Fatal("h1's key was overwritten")
	}
}
