package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster"
)

// logBuffer collects meshd's JSON log lines for a test to wait on.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// find returns the log records whose msg is msg, after skip of them.
func (l *logBuffer) find(msg string) []map[string]any {
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLog waits until the log holds n records with msg and returns the nth.
func waitLog(t *testing.T, l *logBuffer, msg string, n int) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := testcluster.Poll(20*time.Second, 20*time.Millisecond, func() bool {
		recs := l.find(msg)
		if len(recs) >= n {
			rec = recs[n-1]
		}
		return rec != nil
	}); err != nil {
		t.Fatalf("%d× %q in meshd's log: %v:\n%s", n, msg, err, l.b.String())
	}
	return rec
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			out = append(out, fmt.Sprint(e))
		}
	}
	return out
}

// TestSIGHUPReloads runs meshd in-process and sends it real signals: a
// SIGHUP applies the log level and the networks from the edited file (the
// new network reaches the replicated host), names what needs a restart,
// and leaves a broken file unapplied; SIGTERM then stops it without a
// drain. systemd hears READY=1, RELOADING=1 and STOPPING=1 on its socket.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	notes := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := ln.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:k])
		}
	}()
	expectNote := func(prefix string) {
		t.Helper()
		select {
		case s := <-notes:
			if !strings.HasPrefix(s, prefix) {
				t.Errorf("sd_notify %q, want %s", s, prefix)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("no sd_notify %s within 20s", prefix)
		}
	}
	conf := writeFile(t, dir, "meshd.hcl", "log_level = \"info\"\nnetwork = [\"a\"]\ncluster = \"c1\"\n")
	const token = "reload-test-management-token"
	tokenFile := filepath.Join(dir, "management.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- App(&strings.Builder{}, logs).Run([]string{"meshd", "--config-file", conf, "--dev", "--bootstrap",
			"--name", "t1", "--hypervisor", "sim", "--data-dir", filepath.Join(dir, "data"), "--gossip-port", "0",
			"--raft-port", "0", "--api-port", "0", "--log-format", "json", "--initial-management-token-file", tokenFile})
	}()
	running := waitLog(t, logs, "meshd running", 1)
	expectNote("READY=1")
	client, err := api.NewClient(api.Config{Addr: "http://" + fmt.Sprint(running["api"]), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if recs := logs.find("reload: host certificate read"); len(recs) != 0 {
		t.Fatal("certificate read without TLS")
	}

	writeFile(t, dir, "meshd.hcl", "log_level = \"debug\"\nnetwork = [\"a\", \"b.120\"]\ncluster = \"c2\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rec := waitLog(t, logs, "configuration reloaded", 1)
	expectNote("RELOADING=1")
	expectNote("READY=1")
	if applied, restart := strs(rec["applied"]), strs(rec["restart_needed"]); !slices.Equal(applied, []string{"log_level", "network"}) ||
		!slices.Equal(restart, []string{"cluster"}) {
		t.Errorf("reload: applied %v, restart needed %v; want [log_level network], [cluster]", applied, restart)
	}
	t.Logf("reload took %v", rec["took"])
	var hosts []api.HostView
	if err := testcluster.Poll(20*time.Second, 50*time.Millisecond, func() bool {
		hosts, err = client.Hosts(context.Background())
		return err == nil && len(hosts) == 1 && slices.Contains(hosts[0].Networks, api.Network{Name: "b", VLAN: 120})
	}); err != nil {
		t.Fatalf("network b.120 in the replicated host after the reload: %v: %+v, %v", err, hosts, err)
	}
	if hosts[0].Cluster != "c1" {
		t.Errorf("cluster %q changed without a restart", hosts[0].Cluster)
	}

	writeFile(t, dir, "meshd.hcl", "log_level = \"warn\"\nnetwrk = [\"a\"]\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	bad := waitLog(t, logs, "reload: configuration not applied, the running one stays", 1)
	expectNote("RELOADING=1")
	expectNote("READY=1")
	if !strings.Contains(fmt.Sprint(bad["err"]), `meshd.hcl:2: unknown setting "netwrk"`) {
		t.Errorf("broken file's reload error %q, want the file, line and key", bad["err"])
	}
	if len(logs.find("configuration reloaded")) != 1 {
		t.Error("a broken file was applied")
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("meshd after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("meshd did not stop within 30s of SIGTERM")
	}
	expectNote("STOPPING=1")
	waitLog(t, logs, "meshd stopped: the host's VMs keep running and the host stays in the mesh; drain it with meshctl drain or meshctl leave", 1)
	if recs := logs.find("left the mesh"); len(recs) != 0 {
		t.Errorf("SIGTERM left the mesh: %v", recs)
	}
}
