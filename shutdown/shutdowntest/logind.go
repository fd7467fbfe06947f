package shutdowntest

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/hostmesh/hostmesh/shutdown"
)

// Inhibitor is one Inhibit call the fake logind answered.
type Inhibitor struct {
	What, Who, Why, Mode string
	Sender               string
	released             chan struct{}
	mine                 *os.File // the fake's copy of the write end, closed once the caller has it
}

// Released closes when every copy of the inhibitor's fd is closed, as
// logind sees it (EOF on its end of the pipe).
func (i *Inhibitor) Released() <-chan struct{} { return i.released }

// Logind is a fake org.freedesktop.login1 Manager and
// org.freedesktop.systemd1 Manager (ListJobs only) on a Bus.
type Logind struct {
	conn *dbus.Conn

	mu       sync.Mutex
	inh      []*Inhibitor
	jobs     []shutdown.Job
	maxDelay time.Duration
	// shutdownType, when set, makes the fake a systemd 255 logind: its
	// PreparingForShutdownWithMetadata says a shutdown of that type is
	// being prepared. Unset, the property does not exist (systemd 252).
	shutdownType string
	changed      chan struct{}
}

// NewLogind connects to bus and takes logind's and systemd's names.
func NewLogind(t testing.TB, bus *Bus) *Logind {
	t.Helper()
	conn, err := dbus.Connect(bus.Addr)
	if err != nil {
		t.Fatalf("fake logind: connect to %s: %v", bus.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	l := &Logind{conn: conn, maxDelay: 5 * time.Second, changed: make(chan struct{})}
	if err := conn.Export(login1{l}, "/org/freedesktop/login1", "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(props{l}, "/org/freedesktop/login1", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Export(systemd1{l}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"org.freedesktop.login1", "org.freedesktop.systemd1"} {
		reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
		if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("fake logind: own %s: reply %v, %v", name, reply, err)
		}
	}
	return l
}

// SetJobs sets systemd's job queue as ListJobs returns it.
func (l *Logind) SetJobs(jobs ...shutdown.Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs = jobs
}

// SetShutdownType makes the fake answer PreparingForShutdownWithMetadata
// as systemd 255's logind does while it prepares a shutdown of type typ
// (reboot, poweroff, kexec, soft-reboot, halt); "" removes the property,
// as on systemd 252.
func (l *Logind) SetShutdownType(typ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shutdownType = typ
}

// PrepareForShutdown emits logind's signal.
func (l *Logind) PrepareForShutdown(start bool) error {
	return l.conn.Emit("/org/freedesktop/login1", "org.freedesktop.login1.Manager.PrepareForShutdown", start)
}

// Inhibitors are the inhibitors taken so far.
func (l *Logind) Inhibitors() []*Inhibitor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Inhibitor(nil), l.inh...)
}

// WaitInhibitor waits for the n-th (from 1) Inhibit call.
func (l *Logind) WaitInhibitor(t testing.TB, n int, timeout time.Duration) *Inhibitor {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		changed := l.changed
		if len(l.inh) >= n {
			i := l.inh[n-1]
			l.mu.Unlock()
			return i
		}
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("fake logind: no inhibitor #%d within %s", n, timeout)
		}
	}
}

// settle closes the fake's copies of the fds it sent to sender: a later
// call from that sender proves it received them (a bus delivers one
// connection's messages in order). The watcher reads InhibitDelayMaxUSec
// right after Inhibit.
func (l *Logind) settle(sender string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, i := range l.inh {
		if i.Sender == sender && i.mine != nil {
			_ = i.mine.Close()
			i.mine = nil
		}
	}
}

type login1 struct{ l *Logind }

// Inhibit answers as logind: the write end of a pipe whose read end the
// fake watches; EOF there is the inhibitor's release.
func (m login1) Inhibit(sender dbus.Sender, what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	m.l.settle(string(sender))
	r, w, err := os.Pipe()
	if err != nil {
		return -1, dbus.MakeFailedError(err)
	}
	i := &Inhibitor{What: what, Who: who, Why: why, Mode: mode, Sender: string(sender), released: make(chan struct{}), mine: w}
	go func() {
		_, _ = io.Copy(io.Discard, r)
		_ = r.Close()
		close(i.released)
	}()
	m.l.mu.Lock()
	m.l.inh = append(m.l.inh, i)
	close(m.l.changed)
	m.l.changed = make(chan struct{})
	m.l.mu.Unlock()
	return dbus.UnixFD(w.Fd()), nil
}

type props struct{ l *Logind }

// Get answers logind's InhibitDelayMaxUSec, and its
// PreparingForShutdownWithMetadata once SetShutdownType set a type.
func (p props) Get(sender dbus.Sender, iface, prop string) (dbus.Variant, *dbus.Error) {
	p.l.settle(string(sender))
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	switch {
	case iface == "org.freedesktop.login1.Manager" && prop == "InhibitDelayMaxUSec":
		return dbus.MakeVariant(uint64(p.l.maxDelay / time.Microsecond)), nil
	case iface == "org.freedesktop.login1.Manager" && prop == "PreparingForShutdownWithMetadata" && p.l.shutdownType != "":
		return dbus.MakeVariant(map[string]dbus.Variant{
			"preparing": dbus.MakeVariant(true),
			"type":      dbus.MakeVariant(p.l.shutdownType),
		}), nil
	}
	// As sd-bus answers a property an older logind does not have.
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty",
		[]any{fmt.Sprintf("fake logind: no property %s.%s", iface, prop)})
}

type systemd1 struct{ l *Logind }

type job struct {
	ID                uint32
	Unit, Type, State string
	JobPath, UnitPath dbus.ObjectPath
}

// ListJobs answers systemd's job queue.
func (s systemd1) ListJobs(sender dbus.Sender) ([]job, *dbus.Error) {
	s.l.settle(string(sender))
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	out := []job{}
	for i, j := range s.l.jobs {
		out = append(out, job{ID: uint32(100 + i), Unit: j.Unit, Type: j.Type, State: "waiting",
			JobPath: dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", 100+i)), UnitPath: "/org/freedesktop/systemd1/unit/x"})
	}
	return out, nil
}
