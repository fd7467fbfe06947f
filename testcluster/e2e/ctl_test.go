package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// ctlResult is one meshctl invocation as an operator sees it.
type ctlResult struct {
	args           []string
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r ctlResult) String() string {
	return lab.CtlResult{Args: r.args, Code: r.code, Stdout: r.stdout, Stderr: r.stderr, Took: r.took}.String()
}

// ctl runs the meshctl binary from the root namespace against h1's API, over
// the lab's management network.
func (m *mesh) ctl(ctx context.Context, args ...string) ctlResult {
	return m.ctlAt(ctx, m.lab.Hosts[0], args...)
}

// ctlAt runs meshctl against host h's API.
func (m *mesh) ctlAt(ctx context.Context, h *lab.Host, args ...string) ctlResult {
	r := lab.Meshctl(ctx, m.meshctl, h, args...)
	return ctlResult{args: r.Args, code: r.Code, stdout: r.Stdout, stderr: r.Stderr, took: r.Took}
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
func (m *mesh) vms(t *testing.T, ctx context.Context) []api.VM {
	t.Helper()
	var vms []api.VM
	if err := m.ctlJSON(ctx, &vms, "vms"); err != nil {
		t.Fatal(err)
	}
	return vms
}

// vmEntries returns every entry meshctl vms lists under name (a VM listed
// twice would be on two hosts at once).
func (m *mesh) vmEntries(t *testing.T, ctx context.Context, name string) []api.VM {
	t.Helper()
	var out []api.VM
	for _, v := range m.vms(t, ctx) {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}

// host returns meshctl hosts --json's entry for name.
func (m *mesh) host(t *testing.T, ctx context.Context, name string) api.HostView {
	t.Helper()
	var hosts []api.HostView
	if err := m.ctlJSON(ctx, &hosts, "hosts"); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("meshctl hosts does not list %s: %+v", name, hosts)
	return api.HostView{}
}

// migrations returns meshctl migrations --json.
func (m *mesh) migrations(t *testing.T, ctx context.Context) []api.Migration {
	t.Helper()
	var ms []api.Migration
	if err := m.ctlJSON(ctx, &ms, "migrations"); err != nil {
		t.Fatal(err)
	}
	return ms
}

// migration returns the migration with the given ID.
func (m *mesh) migration(t *testing.T, ctx context.Context, id string) api.Migration {
	t.Helper()
	for _, mg := range m.migrations(t, ctx) {
		if mg.ID == id {
			return mg
		}
	}
	t.Fatalf("meshctl migrations does not list %s", id)
	return api.Migration{}
}

// waitVM waits until meshctl vms lists name exactly once, on host, running
// and not held by a migration.
func (m *mesh) waitVM(t *testing.T, ctx context.Context, name, host string) {
	t.Helper()
	var last []api.VM
	err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool {
		last = m.vmEntries(t, ctx, name)
		return len(last) == 1 && last[0].Host == host && last[0].State == api.VMRunning && last[0].Migration == ""
	})
	if err != nil {
		t.Fatalf("meshctl vms: want %s running on %s only: %v (last: %+v)", name, host, err, last)
	}
}

// waitNoVM waits until meshctl vms no longer lists name.
func (m *mesh) waitNoVM(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var last []api.VM
	err := testcluster.Poll(30*time.Second, 250*time.Millisecond, func() bool {
		last = m.vmEntries(t, ctx, name)
		return len(last) == 0
	})
	if err != nil {
		t.Errorf("meshctl vms still lists %s after it was removed: %v (%+v)", name, err, last)
	}
}
