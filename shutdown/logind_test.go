package shutdown_test

import (
	"context"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/shutdown/shutdowntest"
)

// The watcher over a real dbus-daemon: it takes a delay inhibitor for
// shutdowns, hears PrepareForShutdown, reads systemd's job queue and
// InhibitDelayMaxUSec, and its Release closes the fd logind holds the
// other end of.
func TestWatcherOverDBus(t *testing.T) {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := shutdown.Open(ctx, "meshd", "drain before shutdown")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	if inh.What != "shutdown" || inh.Mode != "delay" || inh.Who != "meshd" {
		t.Fatalf("inhibitor what=%q mode=%q who=%q, want shutdown, delay, meshd", inh.What, inh.Mode, inh.Who)
	}
	if !w.Held() || w.MaxDelay() != 5*time.Second {
		t.Fatalf("held %v, max delay %s; want true, 5s", w.Held(), w.MaxDelay())
	}
	if k, err := w.Pending(ctx); err != nil || k != shutdown.None {
		t.Fatalf("empty job queue: kind %s, %v; want none", k, err)
	}
	fake.SetJobs(shutdown.Job{Unit: "reboot.target", Type: "start"}, shutdown.Job{Unit: "shutdown.target", Type: "start"})
	if k, err := w.Pending(ctx); err != nil || k != shutdown.Reboot {
		t.Fatalf("reboot queued: kind %s, %v; want reboot", k, err)
	}
	if err := fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-w.Prepare():
		if !b {
			t.Fatal("PrepareForShutdown(true) delivered as false")
		}
	case <-ctx.Done():
		t.Fatal("PrepareForShutdown not delivered within a minute")
	}
	select {
	case <-inh.Released():
		t.Fatal("inhibitor released before Release")
	default:
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inh.Released():
	case <-ctx.Done():
		t.Fatal("logind's end of the inhibitor saw no EOF after Release")
	}
}

// Without a system bus, Open fails (meshd then runs without an inhibitor).
func TestWatcherNoBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	if w, err := shutdown.Open(context.Background(), "meshd", "x"); err == nil {
		w.Close()
		t.Fatal("Open without a bus: no error")
	}
}

// Announced reads logind's PreparingForShutdownWithMetadata (systemd 255
// and later) and says when there is none (systemd 252): the guard then
// falls back to systemd's job queue.
func TestWatcherAnnouncedKind(t *testing.T) {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := shutdown.Open(ctx, "meshd", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if k, err := w.Announced(ctx); err == nil || k != shutdown.Unknown {
		t.Fatalf("logind without the property (systemd 252): kind %s, err %v; want unknown and an error", k, err)
	}
	for typ, want := range map[string]shutdown.Kind{"reboot": shutdown.Reboot, "soft-reboot": shutdown.Reboot,
		"poweroff": shutdown.PowerOff, "halt": shutdown.PowerOff, "suspend": shutdown.Unknown} {
		fake.SetShutdownType(typ)
		if k, err := w.Announced(ctx); err != nil || k != want {
			t.Errorf("logind preparing a %q: kind %s, err %v; want %s", typ, k, err, want)
		}
	}
}
