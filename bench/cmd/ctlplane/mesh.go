package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/pki"
)

// mesh is N real meshd processes on loopback with simulated hypervisors:
// production Raft and gossip timings (no Fast mode), distinct ports and
// data dirs, and production's security: a CA and a host certificate per
// host (mutual TLS on Raft and the API), a gossip key. It is how the
// control-plane figures whose goals are about production are measured.
type mesh struct {
	bin     string
	dir     string
	n       int
	vms     int
	scale   float64
	seeds   []string
	mu      sync.Mutex
	procs   []*exec.Cmd
	exited  []chan struct{}
	clients map[string]*api.Client // by API address, and "host@" address for the bench's host identity
	portOff int
	// certs holds the mesh's CA and host certificates; key is its gossip key.
	certs *pki.MeshFiles
	key   string
	// tokenFile holds the management token every host starts with
	// (--initial-management-token-file); token is its secret, sent by the
	// bench's operator clients.
	tokenFile, token string
	// noLeader counts write requests answered 503 (no leader) and retried.
	noLeader atomic.Int64
	// killed counts hosts killed on purpose (failover runs).
	killed int
	// joinBatch hosts are started joinGap apart, then the bench waits until
	// the mesh has settled with them (joinWait at most) before the next
	// batch (see up).
	joinBatch int
	joinGap   time.Duration
	joinWait  time.Duration
	// joinLog records each batch: hosts, how long it took to settle, the
	// load average then.
	joinLog []string
}

func newMesh(bin, dir string, n, vms int, scale float64, portBase int) *mesh {
	m := &mesh{bin: bin, dir: dir, n: n, vms: vms, scale: scale, portOff: portBase,
		procs: make([]*exec.Cmd, n), exited: make([]chan struct{}, n),
		clients: map[string]*api.Client{}, joinBatch: 10, joinWait: 2 * time.Minute}
	for i := 0; i < min(n, 3); i++ {
		m.seeds = append(m.seeds, m.gossipAddr(i))
	}
	return m
}

func hostName(i int) string { return "h" + strconv.Itoa(i+1) }

func (m *mesh) gossipAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", m.portOff+i) }
func (m *mesh) raftPort(i int) int      { return m.portOff + 1000 + i }
func (m *mesh) api(i int) string        { return fmt.Sprintf("127.0.0.1:%d", m.portOff+2000+i) }

// start launches host i; every host but a fresh h1 joins the seeds, and a
// fresh h1 bootstraps the mesh.
func (m *mesh) start(i int, join bool) error {
	name := hostName(i)
	tlsFlags, err := m.hostFlags(name)
	if err != nil {
		return err
	}
	args := []string{"--name", name, "--cluster", "c1", "--data-dir", filepath.Join(m.dir, name),
		"--bind", "127.0.0.1", "--gossip-port", strconv.Itoa(m.portOff + i), "--raft-port", strconv.Itoa(m.raftPort(i)),
		"--api-port", strconv.Itoa(m.portOff + 2000 + i), "--gossip-key", m.key, "--hypervisor", "sim",
		"--sim-vms", strconv.Itoa(m.vms), "--sim-vm-mem", "1024", "--sim-timescale", strconv.FormatFloat(m.scale, 'f', -1, 64),
		"--network", "vmnet", "--storage-domain", "shared=/srv/shared", "--drain-on-sigterm=false", "--log-level", "warn"}
	args = append(args, tlsFlags...)
	args = append(args, "--initial-management-token-file", m.tokenFile)
	if join {
		for j, s := range m.seeds {
			if j != i {
				args = append(args, "--join", s)
			}
		}
	} else {
		args = append(args, "--bootstrap")
	}
	cmd := exec.Command(m.bin, args...)
	log, err := os.OpenFile(filepath.Join(m.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log of meshd %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start meshd %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	m.mu.Lock()
	m.procs[i], m.exited[i] = cmd, done
	m.mu.Unlock()
	return nil
}

// kill stops host i with SIGKILL, as a crash would, and waits for it to exit.
func (m *mesh) kill(i int) {
	m.mu.Lock()
	cmd, done := m.procs[i], m.exited[i]
	m.procs[i] = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// pid of host i's process, 0 when it is not running.
func (m *mesh) pid(i int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.procs[i] == nil {
		return 0
	}
	return m.procs[i].Process.Pid
}

func (m *mesh) close() {
	var wg sync.WaitGroup
	for i := range m.procs {
		wg.Add(1)
		go func() { defer wg.Done(); m.kill(i) }()
	}
	wg.Wait()
}

// up starts all hosts: h1 bootstraps, the others join in batches of
// joinBatch, each host joinGap after the one before, and each batch must
// settle (every host started so far Up with all its VMs replicated, under
// a leader with a full set of voters) before the next starts. Two cores
// cannot start 200 meshd at once: a meshd's start costs ~0.5 s of CPU
// (its snapshot install, gossip push/pull, TLS) and every host already in
// the mesh pays for each join (the Raft entries it brings, replicated to
// all), so joins that outran the machine starved the voters past Raft's
// 250 ms lease, leaders stepped down, and 200 hosts never settled. Waiting
// only for the leader to count the batch's hosts (as before) let that
// work pile up behind the next batch. Production's timings stay.
func (m *mesh) up() error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("mesh dir: %w", err)
	}
	certs, err := pki.NewMeshFiles(filepath.Join(m.dir, "tls"))
	if err != nil {
		return fmt.Errorf("mesh CA: %w", err)
	}
	m.certs, m.key = certs, gossip.GenerateKey()
	m.token, m.tokenFile = benchToken(), filepath.Join(m.dir, "management.token")
	if err := os.WriteFile(m.tokenFile, []byte(m.token), 0o600); err != nil {
		return fmt.Errorf("management token: %w", err)
	}
	if err := m.start(0, false); err != nil {
		return err
	}
	if _, err := benchkit.Poll(30*time.Second, 50*time.Millisecond, "h1 to lead", func() bool {
		st, err := m.status(0)
		return err == nil && st.Leader == "h1"
	}); err != nil {
		return err
	}
	batch := max(m.joinBatch, 1)
	for i := 1; i < m.n; i++ {
		if err := m.start(i, true); err != nil {
			return err
		}
		if i%batch != 0 && i != m.n-1 {
			if m.joinGap > 0 {
				time.Sleep(m.joinGap)
			}
			continue
		}
		start := time.Now()
		if err := m.settledN(i+1, m.joinWait, true); err != nil {
			return fmt.Errorf("batch up to %s: %w", hostName(i), err)
		}
		load, _ := os.ReadFile("/proc/loadavg")
		m.joinLog = append(m.joinLog, fmt.Sprintf("%d hosts settled in %s (load %s)", i+1, time.Since(start).Round(100*time.Millisecond), strings.Join(strings.Fields(string(load))[:3], " ")))
		log.Printf("mesh: %s", m.joinLog[len(m.joinLog)-1])
	}
	return m.settled(5*time.Minute, true)
}

// settled waits until some node leads and reports every host Up, with all
// VMs when checkVMs (a restarted sim host comes back with its own VMs only:
// those that had migrated to it lived in the killed process).
func (m *mesh) settled(timeout time.Duration, checkVMs bool) error {
	return m.settledN(m.n, timeout, checkVMs)
}

// settledN is settled for the first n hosts (those started so far).
func (m *mesh) settledN(n int, timeout time.Duration, checkVMs bool) error {
	var last string
	_, err := benchkit.Poll(timeout, 500*time.Millisecond, fmt.Sprintf("%d hosts Up, %d VMs", n, n*m.vms), func() bool {
		l, err := m.leader()
		if err != nil {
			last = err.Error()
			return false
		}
		st, err := m.status(l)
		if err != nil || st.Hosts != n || (checkVMs && st.VMs != n*m.vms) || len(st.Voters) < min(5, n) || len(st.Voters)+len(st.Nonvoters) != n {
			last = fmt.Sprintf("leader %s: %+v %v", hostName(l), st, err)
			return false
		}
		var hosts []api.HostView
		if err := m.call(m.api(l), "GET", "/v1/hosts", nil, &hosts); err != nil {
			last = err.Error()
			return false
		}
		for _, h := range hosts {
			if h.State != "Up" {
				last = fmt.Sprintf("host %s is %s (%s)", h.Name, h.State, h.StateReason)
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w; last seen: %s", err, last)
	}
	return nil
}

// leader asks running hosts who leads, and returns its index.
func (m *mesh) leader() (int, error) {
	for i := 0; i < m.n; i++ {
		if m.pid(i) == 0 {
			continue
		}
		st, err := m.status(i)
		if err != nil || st.Leader == "" {
			continue
		}
		idx, err := strconv.Atoi(st.Leader[1:])
		if err != nil {
			return 0, fmt.Errorf("leader name %q: %w", st.Leader, err)
		}
		if m.pid(idx-1) == 0 {
			continue // a stale view naming the dead leader
		}
		return idx - 1, nil
	}
	return 0, fmt.Errorf("no host names a live leader")
}

func (m *mesh) status(i int) (api.Status, error) {
	var st api.Status
	err := m.call(m.api(i), "GET", "/v1/status", nil, &st)
	return st, err
}

// call sends one API request as meshctl would; a non-2xx answer is an
// *api.Error carrying the status and message.
func (m *mesh) call(addr, method, path string, in, out any) error {
	return m.raw(addr, method, path, in, out)
}

// raw is call with a body sent as it is (an io.Reader) or an out that
// takes the raw answer (a *strings.Builder).
func (m *mesh) raw(addr, method, path string, body, out any) error {
	cl, err := m.clientOf(addr)
	if err != nil {
		return err
	}
	return cl.Do(context.Background(), method, path, body, out)
}

// clientOf is the API client of the meshd at addr (one per address), as an
// operator's: HTTPS verified with the mesh's CA.
func (m *mesh) clientOf(addr string) (*api.Client, error) {
	return m.client(addr, "")
}

// benchHost is the host identity the bench presents where only hosts may
// call (the internal apply route of the throughput phase).
const benchHost = "bench"

func (m *mesh) client(addr, host string) (*api.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := host + "@" + addr
	if cl := m.clients[key]; cl != nil {
		return cl, nil
	}
	cfg := api.Config{Addr: addr, CAFile: m.certs.CAFile, Timeout: 10 * time.Second, MaxIdleConnsPerHost: 128}
	if host == "" {
		cfg.Token = m.token
	}
	if host != "" {
		cert, key, ok := m.certs.Files(host)
		if !ok {
			var err error
			if cert, key, err = m.certs.Host(pki.CertSpec{Name: host}); err != nil {
				return nil, err
			}
		}
		cfg.CertFile, cfg.KeyFile, cfg.Host = cert, key, host
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	m.clients[key] = cl
	return cl, nil
}

// hostFlags are meshd's TLS flags for host name, its certificate issued on
// its first start.
func (m *mesh) hostFlags(name string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, _, ok := m.certs.Files(name); !ok {
		if _, _, err := m.certs.Host(pki.CertSpec{Name: name}); err != nil {
			return nil, err
		}
	}
	return m.certs.MeshdFlags(name)
}

// write sends a write request and retries it while the mesh answers "no
// leader" (503), as an operator re-running meshctl would; retries are
// counted so the report can say how often the leader stepped down.
func (m *mesh) write(addr, method, path string, in, out any) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := m.call(addr, method, path, in, out)
		var he *api.Error
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		m.noLeader.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// stepDowns counts, over every host's log, the times a leader gave up
// leadership because it could not reach a quorum within its lease.
func (m *mesh) stepDowns() int {
	total := 0
	for i := 0; i < m.n; i++ {
		b, err := os.ReadFile(filepath.Join(m.dir, hostName(i)+".log"))
		if err == nil {
			total += strings.Count(string(b), "failed to contact quorum of nodes, stepping down")
		}
	}
	return total
}

// benchToken is a fresh management token secret.
func benchToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
