package shutdown_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/shutdown/shutdowntest"
)

// recHost records what the guard asked of the host.
type recHost struct {
	mu    sync.Mutex
	calls []string
	ch    chan string
}

func newRecHost() *recHost { return &recHost{ch: make(chan string, 8)} }

func (h *recHost) rec(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
	h.ch <- s
}

func (h *recHost) Leave(context.Context, time.Duration) (*api.LeaveReport, error) {
	h.rec("leave")
	return &api.LeaveReport{}, nil
}
func (h *recHost) Freeze(context.Context, string) error { h.rec("freeze"); return nil }
func (h *recHost) Thaw(context.Context) error           { h.rec("thaw"); return nil }

func (h *recHost) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-h.ch:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the guard asked nothing of the host within 30s")
	}
	return ""
}

func guardOnBus(t *testing.T, policy shutdown.Policy) (*shutdowntest.Logind, *shutdown.Guard, *recHost, *shutdown.Watcher) {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := shutdown.Open(ctx, "meshd", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	h := newRecHost()
	g := shutdown.NewGuard(shutdown.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Host: h, Watcher: w,
		Policy: func() shutdown.Policy { return policy }, DrainTimeout: time.Minute})
	go g.Run(ctx)
	return fake, g, h, w
}

// conditional with an empty job queue at PrepareForShutdown (a systemctl
// reboot or poweroff through logind on systemd 252) releases the
// inhibitor without acting and decides on the SIGTERM, from the queue.
func TestGuardConditionalDefersToSIGTERM(t *testing.T) {
	fake, g, h, _ := guardOnBus(t, shutdown.Conditional)
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	if err := fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inh.Released():
	case <-time.After(30 * time.Second):
		t.Fatal("inhibitor not released within 30s")
	}
	if a := g.Action(); a != shutdown.ActNone {
		t.Fatalf("action before SIGTERM %s, want none", a)
	}
	fake.SetJobs(shutdown.Job{Unit: "poweroff.target", Type: "start"}, shutdown.Job{Unit: "meshd.service", Type: "stop"})
	if a := g.OnTerm(context.Background()); a != shutdown.ActMigrate {
		t.Fatalf("SIGTERM during a power-off: %s, want migrate", a)
	}
	if c := h.next(t); c != "leave" {
		t.Fatalf("host asked %q, want leave", c)
	}
}

// A SIGTERM with no shutdown queued is a restart: nothing asked of the
// host, the inhibitor still held.
func TestGuardSIGTERMOutsideShutdownIsRestart(t *testing.T) {
	fake, g, h, w := guardOnBus(t, shutdown.Migrate)
	fake.WaitInhibitor(t, 1, 30*time.Second)
	if a := g.OnTerm(context.Background()); a != shutdown.ActNone {
		t.Fatalf("SIGTERM outside a shutdown: %s, want none", a)
	}
	h.mu.Lock()
	calls := len(h.calls)
	h.mu.Unlock()
	if calls != 0 || !w.Held() {
		t.Fatalf("host asked %v, inhibitor held %v; want nothing, true", h.calls, w.Held())
	}
}

// A cancelled shutdown thaws a frozen host and takes the inhibitor again.
func TestGuardCancelThaws(t *testing.T) {
	fake, g, h, w := guardOnBus(t, shutdown.Freeze)
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	if err := fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	if c := h.next(t); c != "freeze" {
		t.Fatalf("host asked %q, want freeze", c)
	}
	select {
	case <-inh.Released():
	case <-time.After(30 * time.Second):
		t.Fatal("inhibitor not released within 30s after the freeze")
	}
	if err := fake.PrepareForShutdown(false); err != nil {
		t.Fatal(err)
	}
	if c := h.next(t); c != "thaw" {
		t.Fatalf("host asked %q, want thaw", c)
	}
	fake.WaitInhibitor(t, 2, 30*time.Second)
	if err := testWait(func() bool { return w.Held() && g.Action() == shutdown.ActNone }); err != nil {
		t.Fatalf("after the cancel: held %v, action %s", w.Held(), g.Action())
	}
}

func testWait(cond func() bool) error {
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			return context.DeadlineExceeded
		case <-tick.C:
		}
	}
	return nil
}

// With logind's shutdown metadata (systemd 255 and later) conditional
// decides at PrepareForShutdown, while the inhibitor holds: a reboot
// freezes and a power-off drains before logind goes on, with nothing in
// systemd's job queue yet.
func TestGuardConditionalReadsLogindMetadata(t *testing.T) {
	for typ, want := range map[string]string{"reboot": "freeze", "poweroff": "leave"} {
		t.Run(typ, func(t *testing.T) {
			fake, g, h, _ := guardOnBus(t, shutdown.Conditional)
			inh := fake.WaitInhibitor(t, 1, 30*time.Second)
			fake.SetShutdownType(typ)
			if err := fake.PrepareForShutdown(true); err != nil {
				t.Fatal(err)
			}
			if c := h.next(t); c != want {
				t.Fatalf("host asked %q, want %s", c, want)
			}
			select {
			case <-inh.Released():
			case <-time.After(30 * time.Second):
				t.Fatal("inhibitor not released within 30s")
			}
			if a := g.Action(); a == shutdown.ActNone || a == shutdown.ActDefer {
				t.Fatalf("action %s after a %s announced with metadata, want it decided", a, typ)
			}
		})
	}
}
