package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// mesh is the lab's real libvirt hosts with one meshd each, driven through
// the meshctl binary as an operator would.
type mesh struct {
	lab            *lab.Lab
	meshd, meshctl string
	logDir         string
	procs          []*os.Process
	cpuModel       string
}

// startMesh brings up a lab of n hosts in one cluster and a meshd on each.
func startMesh(ctx context.Context, meshd, meshctl string, n int) (*mesh, error) {
	logDir, err := os.MkdirTemp("", "hostmesh-labbench-")
	if err != nil {
		return nil, err
	}
	m := &mesh{meshd: meshd, meshctl: meshctl, logDir: logDir}
	clusters := make([]string, n)
	for i := range clusters {
		clusters[i] = "c1"
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "labbench: "+format+"\n", args...) }
	if m.lab, err = lab.Start(ctx, lab.Config{Hosts: n, Clusters: clusters, Logf: logf}); err != nil {
		return nil, fmt.Errorf("start lab of %d hosts: %w", n, err)
	}
	if _, _, err := m.lab.GuestImage(ctx); err != nil {
		m.close()
		return nil, fmt.Errorf("guest image: %w", err)
	}
	for i, h := range m.lab.Hosts {
		args := []string{m.meshd, "--name", h.Name, "--cluster", h.Cluster,
			"--data-dir", filepath.Join(h.StateDir, "meshd"), "--bind", h.MgmtIP, "--migration-addr", h.MigIP,
			"--hypervisor", "libvirt", "--libvirt-uri", "qemu:///system", "--virt-type", "qemu", "--libvirt-peer-uri", h.LibvirtURI,
			"--network", lab.VMBridge, "--storage-domain", "shared=" + m.lab.SharedDir,
			"--unsafe-migration", "--sample-interval", "500ms"}
		args = append(args, m.lab.MeshdSecurityFlags(h)...)
		if i > 0 {
			args = append(args, "--join", m.lab.Hosts[0].MgmtIP+":7946")
		} else {
			args = append(args, "--bootstrap")
		}
		p, err := h.StartDaemon(ctx, filepath.Join(logDir, "meshd-"+h.Name+".log"), args...)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("start meshd on %s: %w", h.Name, err)
		}
		go func() { _, _ = p.Wait() }()
		m.procs = append(m.procs, p)
	}
	if _, err := benchkit.Poll(2*time.Minute, 250*time.Millisecond, fmt.Sprintf("%d meshd hosts Up", n), func() bool {
		var hosts []api.HostView
		if err := m.ctlJSON(ctx, &hosts, "hosts"); err != nil || len(hosts) != n {
			return false
		}
		for _, h := range hosts {
			if h.State != api.HostUp {
				return false
			}
			m.cpuModel = h.CPUModel
		}
		return true
	}); err != nil {
		m.close()
		return nil, fmt.Errorf("%w (meshd logs in %s)", err, logDir)
	}
	return m, nil
}

func (m *mesh) close() {
	for _, p := range m.procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	if m.lab != nil {
		_ = m.lab.Close()
	}
}

func (m *mesh) host(name string) *lab.Host { return m.lab.Host(name) }

// ctlResult is one meshctl run.
type ctlResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r ctlResult) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// ctl runs meshctl against h1's API from the root namespace.
func (m *mesh) ctl(ctx context.Context, args ...string) ctlResult {
	r := lab.Meshctl(ctx, m.meshctl, m.lab.Hosts[0], args...)
	return ctlResult{stdout: r.Stdout, stderr: r.Stderr, code: r.Code, took: r.Took}
}

func (m *mesh) ctlJSON(ctx context.Context, out any, args ...string) error {
	r := m.ctl(ctx, append(args, "--json")...)
	if r.code != 0 {
		return fmt.Errorf("meshctl %s: %s", strings.Join(args, " "), r)
	}
	return json.Unmarshal([]byte(r.stdout), out)
}

// vmHosts maps each VM the mesh knows to its host, and whether it is free
// of any migration.
func (m *mesh) vmHosts(ctx context.Context) (map[string]api.VM, error) {
	var vms []api.VM
	if err := m.ctlJSON(ctx, &vms, "vms"); err != nil {
		return nil, err
	}
	out := map[string]api.VM{}
	for _, v := range vms {
		out[v.Name] = v
	}
	return out, nil
}

// waitVMsOn waits until the mesh lists every named VM on host, running and
// not migrating, so the next meshctl command sees the state virsh made.
func (m *mesh) waitVMsOn(ctx context.Context, host string, names ...string) error {
	var last string
	_, err := benchkit.Poll(2*time.Minute, 200*time.Millisecond, fmt.Sprintf("%v on %s in the mesh", names, host), func() bool {
		vms, err := m.vmHosts(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, n := range names {
			v, ok := vms[n]
			if !ok || v.Host != host || v.Migration != "" || v.State != "running" {
				last = fmt.Sprintf("%s: %+v", n, v)
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, last)
	}
	return nil
}

// migration reads one migration's record (meshctl migrations --json).
func (m *mesh) migration(ctx context.Context, id string) (api.Migration, error) {
	var migs []api.Migration
	if err := m.ctlJSON(ctx, &migs, "migrations"); err != nil {
		return api.Migration{}, err
	}
	for _, mg := range migs {
		if mg.ID == id {
			return mg, nil
		}
	}
	return api.Migration{}, fmt.Errorf("meshctl migrations: no migration %s", id)
}
