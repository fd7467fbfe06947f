package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/gossip"
)

// runMeshdArgs runs meshd's command line in-process, for the cases that
// end before the daemon would run.
func runMeshdArgs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut strings.Builder
	base := []string{"meshd", "--name", "t1", "--data-dir", filepath.Join(t.TempDir(), "data"), "--hypervisor", "sim",
		"--gossip-port", "0", "--raft-port", "0", "--api-port", "0", "--log-level", "error"}
	err := MeshdApp(&out, &errOut).Run(append(base, args...))
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
	code, msg = runMeshdArgs(t, "--bootstrap")
	if code != exitUsage || !strings.Contains(msg, "--gossip-key-file") {
		t.Errorf("no key: exit %d %q, want 2 naming --gossip-key-file", code, msg)
	}
}
