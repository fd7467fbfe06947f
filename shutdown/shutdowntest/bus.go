// Package shutdowntest runs a private system bus (a real dbus-daemon) with
// a fake logind (org.freedesktop.login1: Inhibit returning a real fd,
// PrepareForShutdown, InhibitDelayMaxUSec) and a fake systemd job queue
// (org.freedesktop.systemd1 ListJobs), so that meshd's shutdown handling
// is tested over D-Bus as it runs on a host. It is a non-test package so
// that testcluster and daemon tests share it.
package shutdowntest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// busConfig is a bus anyone on the machine may use and own names on: a
// test's bus, not a system's.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Bus is a private dbus-daemon.
type Bus struct {
	// Addr is the bus address, for DBUS_SYSTEM_BUS_ADDRESS.
	Addr string
}

// StartBus runs dbus-daemon (Debian package dbus-daemon) until the test
// ends. It fails the test when dbus-daemon is missing.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatalf("dbus-daemon not found (apt-get install dbus-daemon; make deps installs it): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, filepath.Join(dir, "bus"))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dbus-daemon's stderr:\n%s", stderr.String())
		}
	})
	// dbus-daemon prints its address once it listens.
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon exited without printing its address")
		}
		return &Bus{Addr: a}
	case <-time.After(30 * time.Second):
		t.Fatal("dbus-daemon did not print its address within 30s")
	}
	return nil
}
