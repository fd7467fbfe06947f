package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMeshctlLinksNoDaemon: meshctl drives a mesh over its HTTP API only.
// Linking Raft, memberlist, bolt or libvirt would grow the binary and, for
// libvirt, tie it to a C library it never calls; it happened once, when
// meshd's command line lived in package cli.
func TestMeshctlLinksNoDaemon(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", "go.etcd.io/bbolt",
		"libvirt.org/", "github.com/hostmesh/hostmesh/node", "github.com/hostmesh/hostmesh/gossip",
		"github.com/hostmesh/hostmesh/migrate", "github.com/hostmesh/hostmesh/daemon"}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), out)
	}
	allowed := map[string]bool{"github.com/hostmesh/hostmesh/gossip/gossipkey": true} // keygen: no memberlist
	for _, d := range deps {
		for _, f := range forbidden {
			under := d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/")
			if under && !allowed[d] {
				t.Errorf("meshctl links %s (forbidden: %s)", d, f)
			}
		}
	}
}

// TestVersionFromLinker: the Makefile's -ldflags -X values are what
// --version prints.
func TestVersionFromLinker(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "meshctl")
	ld := "-X github.com/hostmesh/hostmesh/version.Version=9.8.7 -X github.com/hostmesh/hostmesh/version.Commit=0123456789abcdef"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("meshctl --version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "meshctl version 9.8.7 (commit 0123456789ab, go") {
		t.Errorf("meshctl --version = %q", out)
	}
}
