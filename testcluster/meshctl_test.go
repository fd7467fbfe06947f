package testcluster

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/cli"
)

// meshctl runs the real command in-process against a node's API, as an
// operator with the cluster's CA certificate (MESH_CACERT) and its
// management token would.
func (c *Cluster) meshctl(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	head := []string{"meshctl", "--addr", addr, "--token-file", c.TokenFile}
	if c.CA != nil {
		head = append(head, "--cacert", c.CAFile)
	} else {
		head[2] = "http://" + addr
	}
	code = cli.Run(append(head, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// meshctl runs the real command against the node at addr, with the CA of
// the test cluster that node belongs to.
func meshctl(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c := clusterAt(addr)
	if c == nil {
		t.Fatalf("meshctl: no test cluster serves %s", addr)
	}
	return c.meshctl(t, addr, args...)
}

func TestMeshctlAgainstAMesh(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, TimeScale: 40})
	c.waitVMs(6)
	follower := c.Node(0)
	if follower.IsLeader() {
		follower = c.Node(1)
	}
	addr := follower.APIAddr()

	code, out, _ := c.meshctl(t, addr, "hosts")
	if code != 0 {
		t.Fatalf("hosts: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(out, "Skylake-Server") || !strings.Contains(out, "vmnet.100") || !strings.Contains(out, "leader") {
		t.Fatalf("hosts table:\n%s", out)
	}
	code, out, _ = c.meshctl(t, addr, "hosts", "--json")
	var hosts []api.HostView
	if code != 0 || json.Unmarshal([]byte(out), &hosts) != nil || len(hosts) != 3 || hosts[0].MemTotalMiB == 0 {
		t.Fatalf("hosts --json: exit %d\n%s", code, out)
	}

	// A refusal: exit 1, the check named on stderr, nothing queued.
	code, _, errOut := c.meshctl(t, addr, "migrate", "vm-h1-0", "--to", "h1")
	if code != 1 || !strings.Contains(errOut, "distinct-hosts") {
		t.Fatalf("refused migrate: exit %d stderr %q", code, errOut)
	}
	code, _, errOut = c.meshctl(t, addr, "migrate", "no-such-vm")
	if code != 2 || !strings.Contains(errOut, "no such VM") {
		t.Fatalf("unknown VM: exit %d stderr %q", code, errOut)
	}

	// Written to a follower, forwarded to the leader, waited on.
	code, out, errOut = c.meshctl(t, addr, "migrate", "vm-h1-0", "--wait", "--to", "h2")
	if code != 0 || !strings.Contains(out, "moved h1 → h2") || !strings.Contains(out, "downtime") {
		t.Fatalf("migrate --wait: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = c.meshctl(t, addr, "migrations")
	if code != 0 || !strings.Contains(out, "Succeeded") {
		t.Fatalf("migrations: exit %d\n%s", code, out)
	}

	code, out, errOut = c.meshctl(t, addr, "drain", "h3", "--wait")
	if code != 0 || !strings.Contains(out, "in Maintenance") {
		t.Fatalf("drain --wait: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = c.meshctl(t, addr, "activate", "h3", "--return")
	if code != 0 || !strings.Contains(out, "h3 is Up; 2 migrations queued") {
		t.Fatalf("activate --return: exit %d\n%s", code, out)
	}
	c.WaitFor(60*time.Second, "h3's VMs back on h3", func() bool {
		return len(c.Leader(10*time.Second).FSM().State().VMsOn("h3")) == 2
	})
}
