package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/shutdown"
	"github.com/hostmesh/hostmesh/shutdown/shutdowntest"
	"github.com/hostmesh/hostmesh/testcluster"
)

// startMeshd runs meshd in-process (sim, --dev, one bootstrapped host
// with 2 VMs) with conf as its file, waits until the host and its VMs are
// in the state, and returns its log and its end.
func startMeshd(t *testing.T, dir, conf string) (*logBuffer, chan error) {
	t.Helper()
	const token = "shutdown-test-management-token"
	tokenFile := filepath.Join(dir, "management.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- App(&strings.Builder{}, logs).Run([]string{"meshd", "--config-file", conf, "--dev", "--bootstrap",
			"--name", "t1", "--hypervisor", "sim", "--sim-vms", "2", "--data-dir", filepath.Join(dir, "data"), "--gossip-port", "0",
			"--raft-port", "0", "--api-port", "0", "--log-format", "json", "--initial-management-token-file", tokenFile})
	}()
	running := waitLog(t, logs, "meshd running", 1)
	client, err := api.NewClient(api.Config{Addr: "http://" + fmt.Sprint(running["api"]), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(30*time.Second, 50*time.Millisecond, func() bool {
		hosts, err := client.Hosts(context.Background())
		return err == nil && len(hosts) == 1 && hosts[0].VMs == 2
	}); err != nil {
		t.Fatalf("host t1 with its 2 VMs in the state: %v", err)
	}
	return logs, done
}

func waitExit(t *testing.T, done chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("meshd after %s: %v", what, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("meshd still running 60s after %s", what)
	}
}

// TestMeshdShutdownPolicyOverDBus runs meshd against a private system bus
// with a fake logind: meshd takes a shutdown delay inhibitor at start; a
// reload changes the policy from freeze to migrate; logind's
// PrepareForShutdown then drains the host (its sim VMs cannot move: it is
// alone, so the drain ends stuck at once) and meshd leaves and exits,
// closing the inhibitor's fd.
func TestMeshdShutdownPolicyOverDBus(t *testing.T) {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	dir := t.TempDir()
	conf := writeFile(t, dir, "meshd.hcl", "shutdown_policy = \"freeze\"\ndrain_timeout = \"5s\"\n")
	logs, done := startMeshd(t, dir, conf)
	rec := waitLog(t, logs, "logind delay inhibitor taken: a system shutdown or reboot applies the shutdown policy first", 1)
	if rec["shutdown_policy"] != "freeze" {
		t.Errorf("policy logged %v, want freeze", rec["shutdown_policy"])
	}
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	if inh.What != "shutdown" || inh.Mode != "delay" || inh.Who != "meshd" {
		t.Fatalf("inhibitor what=%q mode=%q who=%q", inh.What, inh.Mode, inh.Who)
	}

	writeFile(t, dir, "meshd.hcl", "shutdown_policy = \"migrate\"\ndrain_timeout = \"5s\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if applied := strs(waitLog(t, logs, "configuration reloaded", 1)["applied"]); !slices.Contains(applied, "shutdown_policy") {
		t.Fatalf("reload applied %v, want shutdown_policy", applied)
	}
	if err := fake.PrepareForShutdown(true); err != nil {
		t.Fatal(err)
	}
	ann := waitLog(t, logs, "shutdown announced by logind (PrepareForShutdown)", 1)
	if ann["policy"] != "migrate" || ann["action"] != "migrate" {
		t.Errorf("announced: policy %v action %v, want migrate, migrate", ann["policy"], ann["action"])
	}
	waitExit(t, done, "PrepareForShutdown under migrate")
	if len(logs.find("left the mesh")) != 1 {
		t.Error("meshd exited without leaving the mesh")
	}
	select {
	case <-inh.Released():
	case <-time.After(30 * time.Second):
		t.Fatal("the inhibitor's fd is still open 30s after meshd ended")
	}
}

// Without a system bus meshd says so at start and runs; its SIGTERM is a
// restart.
func TestMeshdWithoutLogind(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	dir := t.TempDir()
	logs, done := startMeshd(t, dir, writeFile(t, dir, "meshd.hcl", "shutdown_policy = \"migrate\"\n"))
	waitLog(t, logs, "no logind on a system bus: running without a shutdown inhibitor; a system shutdown or reboot will stop meshd "+
		"like a restart (VMs stay, nothing drains) and the shutdown policy is not applied", 1)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, done, "SIGTERM")
	if len(logs.find("left the mesh")) != 0 {
		t.Error("SIGTERM without logind left the mesh")
	}
}

// A SIGTERM while systemd's queue holds a reboot, under conditional,
// freezes the host (VMs stay) instead of draining it.
func TestMeshdSIGTERMInRebootFreezes(t *testing.T) {
	bus := shutdowntest.StartBus(t)
	fake := shutdowntest.NewLogind(t, bus)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	dir := t.TempDir()
	logs, done := startMeshd(t, dir, writeFile(t, dir, "meshd.hcl", "shutdown_policy = \"conditional\"\n"))
	inh := fake.WaitInhibitor(t, 1, 30*time.Second)
	waitLog(t, logs, "logind delay inhibitor taken: a system shutdown or reboot applies the shutdown policy first", 1)
	fake.SetJobs(shutdown.Job{Unit: "reboot.target", Type: "start"}, shutdown.Job{Unit: "meshd.service", Type: "stop"})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, done, "SIGTERM in a reboot")
	waitLog(t, logs, "shutdown: host frozen, its VMs stay where they are; meshd thaws it when it starts again", 1)
	if len(logs.find("left the mesh")) != 0 {
		t.Error("a reboot under conditional left the mesh")
	}
	select {
	case <-inh.Released():
	case <-time.After(30 * time.Second):
		t.Fatal("the inhibitor's fd is still open 30s after meshd ended")
	}
}
