package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/pki"
)

// runMeshdArgs runs meshd's command line in-process, for the cases that
// end before the daemon would run.
func runMeshdArgs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut strings.Builder
	base := []string{"meshd", "--name", "t1", "--data-dir", filepath.Join(t.TempDir(), "data"), "--hypervisor", "sim",
		"--gossip-port", "0", "--raft-port", "0", "--api-port", "0", "--log-level", "error"}
	err := App(&out, &errOut).Run(append(base, args...))
	var ec ucli.ExitCoder
	if !errors.As(err, &ec) {
		t.Fatalf("meshd %v: %v, want an exit error", args, err)
	}
	return ec.ExitCode(), ec.Error()
}

func TestMeshdGossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(gossip.GenerateKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, msg := runMeshdArgs(t, "--bootstrap", "--gossip-key-file", open)
	if code != exitUsage || !strings.Contains(msg, "chmod 600 "+open) {
		t.Errorf("world-readable key file: exit %d %q, want 2 saying chmod 600", code, msg)
	}
	if err := os.Chmod(open, 0o600); err != nil {
		t.Fatal(err)
	}
	code, msg = runMeshdArgs(t, "--bootstrap", "--gossip-key-file", open, "--gossip-key", gossip.GenerateKey())
	if code != exitUsage || !strings.Contains(msg, "exclude each other") {
		t.Errorf("key file and key: exit %d %q, want 2", code, msg)
	}
	code, msg = runMeshdArgs(t, append([]string{"--bootstrap"}, hostTLSFlags(t, "t1")...)...)
	if code != exitUsage || !strings.Contains(msg, "--gossip-key-file") {
		t.Errorf("no key: exit %d %q, want 2 naming --gossip-key-file", code, msg)
	}
}

// hostTLSFlags creates a CA and a host certificate for name and returns
// meshd's flags for them.
func hostTLSFlags(t *testing.T, name string) []string {
	t.Helper()
	files, err := pki.NewMeshFiles(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := files.Host(pki.CertSpec{Name: name}); err != nil {
		t.Fatal(err)
	}
	flags, err := files.MeshdFlags(name)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// TestMeshdRefusesToRunWithoutTLS: without certificates meshd exits 2 and
// says how to create them, unless --dev; files that do not belong together
// or to this host are refused the same way, before anything listens.
func TestMeshdRefusesToRunWithoutTLS(t *testing.T) {
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte(gossip.GenerateKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	t1 := hostTLSFlags(t, "t1")
	files, err := pki.NewMeshFiles(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, _ := files.Host(pki.CertSpec{Name: "t2"})
	opCert, opKey, _ := files.Client("alice")
	for _, c := range []struct {
		what string
		args []string
		say  string
	}{
		{"no TLS files", nil, "meshctl tls ca create"},
		{"only --ca-file", t1[:2], "go together"},
		{"another host's certificate", []string{"--ca-file", files.CAFile, "--cert-file", otherCert, "--key-file", otherKey}, `"t2"`},
		{"an operator's certificate", []string{"--ca-file", files.CAFile, "--cert-file", opCert, "--key-file", opKey}, "not a host certificate"},
		{"a certificate of another CA", []string{"--ca-file", files.CAFile, "--cert-file", t1[3], "--key-file", t1[5]}, "unknown authority"},
	} {
		code, msg := runMeshdArgs(t, append([]string{"--bootstrap", "--gossip-key-file", key}, c.args...)...)
		if code != exitUsage || !strings.Contains(msg, c.say) {
			t.Errorf("%s: exit %d %q, want 2 saying %q", c.what, code, msg, c.say)
		}
	}
}
