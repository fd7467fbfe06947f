package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/pki"
)

// buildMeshd compiles the real daemon once per test.
func buildMeshd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshd")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/meshd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build meshd: %v\n%s", err, out)
	}
	return bin
}

// TestSIGTERMDrainsBeforeLeaving runs two meshd processes and stops one with
// SIGTERM, as systemd would, with --drain-on-sigterm: its VMs must move
// before the process exits. (Without it a SIGTERM is a restart and moves
// nothing: TestRestartKeepsVMsInPlace.)
func TestSIGTERMDrainsBeforeLeaving(t *testing.T) {
	bin := buildMeshd(t)
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// As the README says: a CA, a certificate per host, a gossip key.
	certs, err := pki.NewMeshFiles(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	key := gossip.GenerateKey()
	token := "process-test-management-token"
	tokenFile := filepath.Join(dir, "management.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name string, i int, extra ...string) *exec.Cmd {
		if _, _, err := certs.Host(pki.CertSpec{Name: name}); err != nil {
			t.Fatal(err)
		}
		tlsFlags, _ := certs.MeshdFlags(name)
		args := []string{"--name", name, "--cluster", "c1", "--data-dir", filepath.Join(dir, name),
			"--gossip-port", fmt.Sprint(ports[3*i]), "--raft-port", fmt.Sprint(ports[3*i+1]), "--api-port", fmt.Sprint(ports[3*i+2]),
			"--gossip-key", key, "--hypervisor", "sim", "--sim-vms", "3", "--sim-vm-mem", "512", "--sim-timescale", "20",
			"--network", "vmnet", "--storage-domain", "shared=/srv/shared", "--drain-timeout", "60s", "--log-level", "warn",
			"--initial-management-token-file", tokenFile}
		args = append(append(args, tlsFlags...), extra...)
		cmd := exec.Command(bin, args...)
		log, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		return cmd
	}
	start("p1", 0, "--bootstrap")
	p2 := start("p2", 1, "--join", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--drain-on-sigterm")
	api1, err := api.NewClient(api.Config{Addr: fmt.Sprintf("127.0.0.1:%d", ports[2]), CAFile: certs.CAFile, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer api1.Close()
	ctx := context.Background()
	vms := func() map[string]string {
		list, err := api1.VMs(ctx)
		if err != nil {
			return nil
		}
		out := map[string]string{}
		for _, v := range list {
			out[v.Name] = v.Host
		}
		return out
	}
	if err := Poll(30*time.Second, 100*time.Millisecond, func() bool { return len(vms()) == 6 }); err != nil {
		t.Fatalf("6 VMs from two meshd processes: %v (%v)", err, vms())
	}
	if err := p2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p2.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("meshd p2 exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("meshd p2 did not exit within 60 s of SIGTERM")
	}
	got := vms()
	for vm, host := range got {
		if host != "p1" {
			t.Errorf("after p2's SIGTERM, %s is on %s", vm, host)
		}
	}
	var hosts []api.HostView
	if err := Poll(15*time.Second, 100*time.Millisecond, func() bool {
		hosts, _ = api1.Hosts(ctx)
		for _, h := range hosts {
			if h.Name == "p2" {
				return h.State == api.HostLeft
			}
		}
		return false
	}); err != nil {
		b, _ := json.Marshal(hosts)
		logs, _ := os.ReadFile(filepath.Join(dir, "p2.log"))
		t.Fatalf("p2 not Left: %s\n%s", b, strings.TrimSpace(string(logs)))
	}
}
