package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// clusters places h1 and h2 in cluster c1 and h3 alone in c2, so that a
// migration from h1 to h3 exercises the same-cluster refusal.
var clusters = []string{"c1", "c1", "c2"}

// mesh is the lab plus one meshd per host, driven through the meshctl binary.
type mesh struct {
	lab            *lab.Lab
	meshd, meshctl string
	// logDir outlives the lab (whose Close deletes the hosts' directories):
	// meshd logs go there, and libvirtd and QEMU logs are copied there when
	// a test failed.
	logDir string
	procs  map[string]*os.Process
}

// startMesh starts the lab, builds the binaries and starts meshd on h1 (which
// bootstraps Raft), then on the others joining h1, and waits until every host
// is Up in the replicated state.
func startMesh(ctx context.Context) (*mesh, error) {
	logDir, err := os.MkdirTemp("", "hostmesh-e2e-")
	if err != nil {
		return nil, err
	}
	m := &mesh{logDir: logDir, procs: map[string]*os.Process{}}
	if m.meshd, m.meshctl, err = buildBinaries(ctx, logDir); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) }
	m.lab, err = lab.Start(ctx, lab.Config{Hosts: len(clusters), Dir: labDir(), Clusters: clusters, Logf: logf})
	if err != nil {
		return nil, err
	}
	if _, _, err := m.lab.GuestImage(ctx); err != nil {
		_ = m.close()
		return nil, err
	}
	if err := m.startDaemons(ctx); err != nil {
		m.keepLogs()
		_ = m.close()
		return nil, fmt.Errorf("%w (logs in %s)", err, logDir)
	}
	return m, nil
}

func (m *mesh) startDaemons(ctx context.Context) error {
	first := m.lab.Hosts[0]
	for i, h := range m.lab.Hosts {
		var join []string
		if i > 0 {
			join = []string{"--join", first.MgmtIP + ":7946"}
		}
		if err := m.startMeshd(ctx, h, join...); err != nil {
			return err
		}
		if i == 0 {
			// The others join a mesh that exists: wait for h1's leader.
			if err := m.waitMesh(ctx, 1); err != nil {
				return err
			}
		}
	}
	return m.waitMesh(ctx, len(m.lab.Hosts))
}

// startMeshd runs meshd inside host h's namespaces with the flags an
// operator would give on a real hypervisor host.
func (m *mesh) startMeshd(ctx context.Context, h *lab.Host, extra ...string) error {
	args := []string{m.meshd,
		"--name", h.Name, "--cluster", h.Cluster,
		"--data-dir", filepath.Join(h.StateDir, "meshd"),
		"--bind", h.MgmtIP, "--migration-addr", h.MigIP,
		"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system",
		"--libvirt-peer-uri", h.LibvirtURI,
		"--network", lab.VMBridge,
		"--storage-domain", "shared=" + m.lab.SharedDir,
		"--unsafe-migration", "--dev", "--sample-interval", "500ms",
	}
	args = append(args, extra...)
	p, err := h.StartDaemon(ctx, m.meshdLog(h), args...)
	if err != nil {
		return fmt.Errorf("start meshd on %s: %w", h.Name, err)
	}
	m.procs[h.Name] = p
	// Reap it when it exits, so a crash is seen as gone rather than a zombie.
	go func() { _, _ = p.Wait() }()
	return nil
}

func (m *mesh) meshdLog(h *lab.Host) string { return filepath.Join(m.logDir, "meshd-"+h.Name+".log") }

// waitMesh waits until meshctl status on h1 shows a leader and n hosts, and
// meshctl hosts shows them all Up.
func (m *mesh) waitMesh(ctx context.Context, n int) error {
	var last string
	err := testcluster.Poll(60*time.Second, 250*time.Millisecond, func() bool {
		var st node.Status
		if err := m.ctlJSON(ctx, &st, "status"); err != nil {
			last = err.Error()
			return false
		}
		if st.Leader == "" || st.Hosts != n {
			last = fmt.Sprintf("leader %q, %d hosts", st.Leader, st.Hosts)
			return false
		}
		var hosts []node.HostView
		if err := m.ctlJSON(ctx, &hosts, "hosts"); err != nil {
			last = err.Error()
			return false
		}
		for _, h := range hosts {
			if h.State != fsm.HostUp {
				last = fmt.Sprintf("host %s is %s", h.Name, h.State)
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("mesh of %d hosts: %w (last: %s)", n, err, last)
	}
	return nil
}

// close kills the meshds and the lab (the lab's Close kills everything in
// the hosts' namespaces anyway; meshd is killed first so that it does not
// see its libvirtd vanish and log noise).
func (m *mesh) close() error {
	for _, p := range m.procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	if m.lab == nil {
		return nil
	}
	return m.lab.Close()
}

// keepLogs copies every host's libvirtd and QEMU logs next to the meshd
// logs before the lab's Close deletes them.
func (m *mesh) keepLogs() {
	if m.lab == nil {
		return
	}
	for _, h := range m.lab.Hosts {
		src := filepath.Join(h.StateDir, "log")
		dst := filepath.Join(m.logDir, "libvirt-"+h.Name)
		_ = exec.Command("cp", "-r", src, dst).Run()
	}
}

// ctlResult is one meshctl invocation as an operator sees it.
type ctlResult struct {
	args           []string
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r ctlResult) String() string {
	return fmt.Sprintf("meshctl %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// ctl runs the meshctl binary from the root namespace against h1's API, over
// the lab's management network.
func (m *mesh) ctl(ctx context.Context, args ...string) ctlResult {
	return m.ctlAt(ctx, m.lab.Hosts[0], args...)
}

// ctlAt runs meshctl against host h's API.
func (m *mesh) ctlAt(ctx context.Context, h *lab.Host, args ...string) ctlResult {
	full := append([]string{"--addr", h.MgmtIP + ":7400"}, args...)
	cmd := exec.CommandContext(ctx, m.meshctl, full...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := ctlResult{args: args, stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n(run: " + err.Error() + ")"
	}
	return r
}

// ctlJSON runs a meshctl listing with --json and decodes it into out.
func (m *mesh) ctlJSON(ctx context.Context, out any, args ...string) error {
	r := m.ctl(ctx, append(args, "--json")...)
	if r.code != 0 {
		return fmt.Errorf("meshctl %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	}
	if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("meshctl %s --json: %w: %q", strings.Join(args, " "), err, r.stdout)
	}
	return nil
}

// vms returns meshctl vms --json, failing the test if it cannot.
func (m *mesh) vms(t *testing.T, ctx context.Context) []fsm.VM {
	t.Helper()
	var vms []fsm.VM
	if err := m.ctlJSON(ctx, &vms, "vms"); err != nil {
		t.Fatal(err)
	}
	return vms
}

// vmEntries returns every entry meshctl vms lists under name (a VM listed
// twice would be on two hosts at once).
func (m *mesh) vmEntries(t *testing.T, ctx context.Context, name string) []fsm.VM {
	t.Helper()
	var out []fsm.VM
	for _, v := range m.vms(t, ctx) {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}

// host returns meshctl hosts --json's entry for name.
func (m *mesh) host(t *testing.T, ctx context.Context, name string) node.HostView {
	t.Helper()
	var hosts []node.HostView
	if err := m.ctlJSON(ctx, &hosts, "hosts"); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("meshctl hosts does not list %s: %+v", name, hosts)
	return node.HostView{}
}

// migrations returns meshctl migrations --json.
func (m *mesh) migrations(t *testing.T, ctx context.Context) []fsm.Migration {
	t.Helper()
	var ms []fsm.Migration
	if err := m.ctlJSON(ctx, &ms, "migrations"); err != nil {
		t.Fatal(err)
	}
	return ms
}

// migration returns the migration with the given ID.
func (m *mesh) migration(t *testing.T, ctx context.Context, id string) fsm.Migration {
	t.Helper()
	for _, mg := range m.migrations(t, ctx) {
		if mg.ID == id {
			return mg
		}
	}
	t.Fatalf("meshctl migrations does not list %s", id)
	return fsm.Migration{}
}

// waitVM waits until meshctl vms lists name exactly once, on host, running
// and not held by a migration.
func (m *mesh) waitVM(t *testing.T, ctx context.Context, name, host string) {
	t.Helper()
	var last []fsm.VM
	err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool {
		last = m.vmEntries(t, ctx, name)
		return len(last) == 1 && last[0].Host == host && last[0].State == fsm.VMRunning && last[0].Migration == ""
	})
	if err != nil {
		t.Fatalf("meshctl vms: want %s running on %s only: %v (last: %+v)", name, host, err, last)
	}
}

// waitNoVM waits until meshctl vms no longer lists name.
func (m *mesh) waitNoVM(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var last []fsm.VM
	err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool {
		last = m.vmEntries(t, ctx, name)
		return len(last) == 0
	})
	if err != nil {
		t.Errorf("meshctl vms still lists %s after it was removed: %v (%+v)", name, err, last)
	}
}
