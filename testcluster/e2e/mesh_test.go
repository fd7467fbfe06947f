package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hostmesh/hostmesh/api"
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
	// h2's TCG CPU lacks one feature (TestCPUBaselineRefusal).
	m.lab, err = lab.Start(ctx, lab.Config{Hosts: len(clusters), Dir: labDir(), Clusters: clusters, Logf: logf,
		TCGWithout: map[string][]string{"h2": {maskedFeature}}})
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
		// h1 starts the mesh once (--bootstrap); the others join it.
		join := []string{"--bootstrap"}
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
	return m.startMeshdEnv(ctx, h, nil, extra...)
}

// startMeshdEnv is startMeshd with variables (NAME=VALUE) added to meshd's
// environment, through env(1): nsenter and env both exec, so the process
// returned is meshd itself and signals reach it.
func (m *mesh) startMeshdEnv(ctx context.Context, h *lab.Host, env []string, extra ...string) error {
	// Secured as a real host is: the mesh CA and h's certificate (the
	// lab's, the one libvirtd and QEMU use), and the gossip key file.
	args := append(m.lab.MeshdArgs(h, m.meshd), extra...)
	if len(env) > 0 {
		args = append(append([]string{"env"}, env...), args...)
	}
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
		var st api.Status
		if err := m.ctlJSON(ctx, &st, "status"); err != nil {
			last = err.Error()
			return false
		}
		if st.Leader == "" || st.Hosts != n {
			last = fmt.Sprintf("leader %q, %d hosts", st.Leader, st.Hosts)
			return false
		}
		var hosts []api.HostView
		if err := m.ctlJSON(ctx, &hosts, "hosts"); err != nil {
			last = err.Error()
			return false
		}
		for _, h := range hosts {
			if h.State != api.HostUp {
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
