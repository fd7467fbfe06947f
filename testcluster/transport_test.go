package testcluster

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// syncBuffer is a log sink several nodes' goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMigrationTransportReachesHypervisor: a cluster nobody configured
// migrates over TLS; once an operator sets migration_transport plain, the
// source asks its hypervisor for a plain stream and logs a warning naming
// the migration. The sim records what each migration was asked for.
func TestMigrationTransportReachesHypervisor(t *testing.T) {
	logs := &syncBuffer{}
	c := New(t, Options{Hosts: 2, VMsPerHost: 1,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	l := c.Leader(10 * time.Second)
	c.WaitFor(20*time.Second, "VMs replicated", func() bool { return len(l.FSM().State().VMs) == 2 })
	h1, _ := c.Reg.Host("h1")
	h2, _ := c.Reg.Host("h2")

	id, err := c.Migrate(c.Node(0).APIAddr(), migrateTo("vm-h1-0", "h2", 500))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.waitFinal(id, 30*time.Second); m.State != fsm.MigSucceeded {
		t.Fatalf("migration %s: %s (%s)", id, m.State, m.Reason)
	}
	if p, ok := h1.LastMigration("vm-h1-0"); !ok || !p.TLS {
		t.Fatalf("default cluster: h1 started %+v (recorded %v), want TLS", p, ok)
	}
	if strings.Contains(logs.String(), "unencrypted") {
		t.Fatalf("a TLS migration logged an unencrypted warning:\n%s", logs)
	}

	addr := c.Node(1).APIAddr()
	code, out, errOut := c.meshctl(t, addr, "cluster", "c1")
	if code != 0 || !strings.Contains(out, "migration transport tls") {
		t.Fatalf("meshctl cluster c1: exit %d, stdout %q, stderr %q; want transport tls", code, out, errOut)
	}
	code, _, errOut = c.meshctl(t, addr, "cluster", "c1", "--migration-transport", "ssh")
	if code == 0 || !strings.Contains(errOut, `"ssh"`) {
		t.Fatalf("meshctl cluster --migration-transport ssh: exit %d, stderr %q; want a refusal naming it", code, errOut)
	}
	code, out, errOut = c.meshctl(t, addr, "cluster", "c1", "--migration-transport", "plain")
	if code != 0 || !strings.Contains(out, "migration transport plain (unencrypted)") {
		t.Fatalf("meshctl cluster --migration-transport plain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id, err = c.Migrate(addr, migrateTo("vm-h1-0", "h1", 500))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.waitFinal(id, 30*time.Second); m.State != fsm.MigSucceeded {
		t.Fatalf("migration %s: %s (%s)", id, m.State, m.Reason)
	}
	if p, ok := h2.LastMigration("vm-h1-0"); !ok || p.TLS {
		t.Fatalf("plain cluster: h2 started %+v (recorded %v), want TLS off", p, ok)
	}
	var warn string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "unencrypted") && strings.Contains(line, "migration="+id) {
			warn = line
		}
	}
	if warn == "" || !strings.Contains(warn, "host=h2") {
		t.Fatalf("no WARN line from the source h2 for plain migration %s in:\n%s", id, logs)
	}
	t.Logf("source's warning: %s", warn)
}
