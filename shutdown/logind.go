package shutdown

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus names of logind and systemd.
const (
	login1Name      = "org.freedesktop.login1"
	login1Path      = "/org/freedesktop/login1"
	login1Manager   = "org.freedesktop.login1.Manager"
	systemd1Name    = "org.freedesktop.systemd1"
	systemd1Path    = "/org/freedesktop/systemd1"
	systemd1Manager = "org.freedesktop.systemd1.Manager"
)

// Watcher holds a logind delay inhibitor for shutdowns and reports
// logind's PrepareForShutdown. It talks to the system bus
// (DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket).
type Watcher struct {
	conn     *dbus.Conn
	who, why string
	maxDelay time.Duration
	// maxDelayErr is why maxDelay is unknown: logged, as a drain that
	// outlives an unknown delay cannot be warned about.
	maxDelayErr error
	prepare     chan bool

	mu sync.Mutex
	fd *os.File // the inhibitor; nil when released
}

// Open connects to the system bus, subscribes to PrepareForShutdown and
// takes a delay inhibitor. An error means there is no logind to watch (no
// system bus, as in most containers, or no logind on it): meshd then runs
// without one.
func Open(ctx context.Context, who, why string) (*Watcher, error) {
	conn, err := dbus.SystemBusPrivate()
	if err != nil {
		return nil, fmt.Errorf("system bus: %w", err)
	}
	w := &Watcher{conn: conn, who: who, why: why, prepare: make(chan bool, 4)}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("system bus: authenticate: %w", err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("system bus: hello: %w", err)
	}
	// Subscribe before the inhibitor is taken: a shutdown announced in
	// between is not missed.
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(login1Path),
		dbus.WithMatchInterface(login1Manager), dbus.WithMatchMember("PrepareForShutdown")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("system bus: subscribe to logind's PrepareForShutdown: %w", err)
	}
	sigs := make(chan *dbus.Signal, 16)
	conn.Signal(sigs)
	go w.relay(sigs)
	if err := w.Inhibit(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	v, err := conn.Object(login1Name, login1Path).GetProperty(login1Manager + ".InhibitDelayMaxUSec")
	if err != nil {
		w.maxDelayErr = fmt.Errorf("logind: read InhibitDelayMaxUSec: %w", err)
	} else if us, ok := v.Value().(uint64); ok {
		w.maxDelay = time.Duration(us) * time.Microsecond
	} else {
		w.maxDelayErr = fmt.Errorf("logind: InhibitDelayMaxUSec is a %s, want a uint64", v.Signature())
	}
	return w, nil
}

// MaxDelayErr says why MaxDelay is unknown (nil when logind said it).
func (w *Watcher) MaxDelayErr() error { return w.maxDelayErr }

// relay turns logind's signals into PrepareForShutdown's argument.
func (w *Watcher) relay(sigs <-chan *dbus.Signal) {
	defer close(w.prepare)
	for s := range sigs {
		if s.Path != login1Path || s.Name != login1Manager+".PrepareForShutdown" || len(s.Body) != 1 {
			continue
		}
		if b, ok := s.Body[0].(bool); ok {
			w.prepare <- b
		}
	}
}

// Prepare delivers PrepareForShutdown's argument: true when a shutdown
// begins, false when one was cancelled. It closes with the connection.
func (w *Watcher) Prepare() <-chan bool { return w.prepare }

// MaxDelay is logind's InhibitDelayMaxUSec: how long it waits for delay
// inhibitors (0 when logind did not say).
func (w *Watcher) MaxDelay() time.Duration { return w.maxDelay }

// Inhibit takes the delay inhibitor if it is not held.
func (w *Watcher) Inhibit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd != nil {
		return nil
	}
	var fd dbus.UnixFD
	if err := w.conn.Object(login1Name, login1Path).CallWithContext(ctx, login1Manager+".Inhibit", 0,
		"shutdown", w.who, w.why, "delay").Store(&fd); err != nil {
		return fmt.Errorf("logind: take a shutdown delay inhibitor: %w", err)
	}
	w.fd = os.NewFile(uintptr(fd), "logind-inhibitor")
	return nil
}

// Held says whether meshd holds the inhibitor.
func (w *Watcher) Held() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fd != nil
}

// Release closes the inhibitor's fd: logind goes on with the shutdown.
func (w *Watcher) Release() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd == nil {
		return nil
	}
	err := w.fd.Close()
	w.fd = nil
	return err
}

// Announced reads the kind of shutdown logind announced, from its
// PreparingForShutdownWithMetadata property (systemd 255 and later:
// {"preparing": true, "type": "reboot"}). It returns Unknown with an
// error where logind has no such property (systemd 252, Debian 12), and
// Unknown without one when logind is not preparing a shutdown or gave no
// type it maps (KindOfType); the caller then reads the job queue.
func (w *Watcher) Announced(ctx context.Context) (Kind, error) {
	var v dbus.Variant
	if err := w.conn.Object(login1Name, login1Path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0,
		login1Manager, "PreparingForShutdownWithMetadata").Store(&v); err != nil {
		return Unknown, fmt.Errorf("logind: read PreparingForShutdownWithMetadata: %w", err)
	}
	md, ok := v.Value().(map[string]dbus.Variant)
	if !ok {
		return Unknown, fmt.Errorf("logind: PreparingForShutdownWithMetadata is a %s, want a{sv}", v.Signature())
	}
	if preparing, ok := md["preparing"].Value().(bool); ok && !preparing {
		return Unknown, nil
	}
	typ, _ := md["type"].Value().(string)
	return KindOfType(typ), nil
}

// Pending reads systemd's job queue (ListJobs) and tells which shutdown it
// runs, if any.
func (w *Watcher) Pending(ctx context.Context) (Kind, error) {
	var raw []struct {
		ID                uint32
		Unit, Type, State string
		JobPath, UnitPath dbus.ObjectPath
	}
	if err := w.conn.Object(systemd1Name, systemd1Path).CallWithContext(ctx, systemd1Manager+".ListJobs", 0).Store(&raw); err != nil {
		return Unknown, fmt.Errorf("systemd: list jobs: %w", err)
	}
	jobs := make([]Job, len(raw))
	for i, j := range raw {
		jobs[i] = Job{Unit: j.Unit, Type: j.Type}
	}
	return KindOf(jobs), nil
}

// Close releases the inhibitor and closes the connection.
func (w *Watcher) Close() error {
	return errors.Join(w.Release(), w.conn.Close())
}
