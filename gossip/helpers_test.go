package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// testKey is the mesh key of the test clusters.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testLogger logs to stderr when GOSSIP_DEBUG is set, else nowhere.
func testLogger(name string) *slog.Logger {
	if os.Getenv("GOSSIP_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", name)
}

func testConfig(name string) Config {
	return Config{Name: name, BindAddr: "127.0.0.1", Key: testKey, Fast: true, Logger: testLogger(name)}
}

// testFacts returns plausible facts of a host.
func testFacts(name string) fsm.HostFacts {
	return fsm.HostFacts{
		Name:           name,
		Cluster:        "default",
		APIAddr:        "127.0.0.1:7001",
		RaftAddr:       "127.0.0.1:7002",
		MgmtAddr:       "127.0.0.1",
		MigrationAddr:  "127.0.0.1",
		HypervisorURI:  "qemu+tcp://127.0.0.1/system",
		Hypervisor:     "sim",
		Arch:           "x86_64",
		CPUModel:       "Skylake-Server",
		CPUFlags:       []string{"sse4_2", "avx2", "vmx"},
		MemTotalMiB:    65536,
		MemFreeMiB:     32768,
		CPUs:           16,
		CPUsFree:       12,
		Networks:       []fsm.Network{{Name: "ovirtmgmt"}, {Name: "prod", VLAN: 100}},
		StorageDomains: []string{"nfs-data"},
		Version:        "test",
	}
}

// startAgent starts an agent that is shut down when the test ends.
func startAgent(tb testing.TB, cfg Config, facts fsm.HostFacts) *Agent {
	tb.Helper()
	a, err := Start(cfg, facts)
	if err != nil {
		tb.Fatalf("start %s: %v", cfg.Name, err)
	}
	tb.Cleanup(func() { _ = a.Shutdown() })
	return a
}

// startCluster starts n agents named h00.. and joins them through the first.
func startCluster(tb testing.TB, n int) []*Agent {
	tb.Helper()
	agents := make([]*Agent, n)
	for i := range agents {
		name := fmt.Sprintf("h%02d", i)
		agents[i] = startAgent(tb, testConfig(name), testFacts(name))
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].Addr()}); err != nil {
				tb.Fatalf("join %s: %v", name, err)
			}
		}
	}
	return agents
}

// waitFor polls cond until it holds or the timeout passes, and returns how
// long it took. It fails the test with what on timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond() {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			if cond() {
				return time.Since(start)
			}
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// sees reports whether a holds host alive with facts of at least version v.
func sees(a *Agent, host string, v uint64) bool {
	m, ok := a.Member(host)
	return ok && m.Status == StatusAlive && m.Version >= v && m.Facts.Name == host
}

// converged reports whether every agent sees every other alive with facts.
func converged(agents []*Agent) bool {
	for _, a := range agents {
		for _, b := range agents {
			if !sees(a, b.Name(), 1) {
				return false
			}
		}
	}
	return true
}

// waitEvent reads events of a until one matches, failing on timeout.
func waitEvent(tb testing.TB, a *Agent, timeout time.Duration, what string, match func(Event) bool) Event {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev := <-a.Events():
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			tb.Fatalf("timed out after %v waiting for %s on %s", timeout, what, a.Name())
		}
	}
}

// recorder is a slog handler keeping every record, for tests that assert
// what an agent logged.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// has reports a record at level or above whose message contains msg and
// that carries the attribute key.
func (r *recorder) has(level slog.Level, msg, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level < level || !strings.Contains(rec.Message, msg) {
			continue
		}
		found := key == ""
		rec.Attrs(func(a slog.Attr) bool {
			found = found || a.Key == key
			return !found
		})
		if found {
			return true
		}
	}
	return false
}
