package main

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/gossip"
	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/pki"
)

// fleetOpts configures the fleet phase: a real meshd leader loaded by
// hundreds of light hosts in this process (issue 15's model to 1,000).
type fleetOpts struct {
	bin           string
	sizes         []int
	window        time.Duration
	runs          int
	vms, portBase int
	perf          time.Duration // perf record the leader at the largest size this long; 0: no profile
	// budget stops the growth at the first batch boundary past it (0: none),
	// so a run under the machine's lock still measures its largest size.
	budget time.Duration
	// selfProfile CPU-profiles this process (the light hosts) per size:
	// what the fleet costs on the bench's side, which limits the size.
	selfProfile bool
	gcPercent   int // GOGC of this process
	dir         string
}

// fleetHost is one light host: a Raft non-voter on meshd's own transport
// (node.Replica: mutual TLS with its host certificate, an FSM that decodes
// nothing and keeps nothing) and a gossip agent announcing it with a real
// sim host's facts, so the leader adds and keeps it as it would a meshd.
type fleetHost struct {
	rep   *node.Replica
	agent *gossip.Agent
	facts fsm.HostFacts
}

// countFSM counts the entries it is given and keeps nothing.
type countFSM struct{ applied atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any { f.applied.Add(1); return nil }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return emptySnapshot{}, nil
}
func (f *countFSM) Restore(rc io.ReadCloser) error {
	_, err := io.Copy(io.Discard, rc)
	return err
}

type emptySnapshot struct{}

func (emptySnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (emptySnapshot) Release()                             {}

// fleetPhase starts 5 meshd (the voters, h1 leading) and grows the mesh
// with light hosts to each size in turn, measuring the idle leader at each.
func fleetPhase(sec *benchkit.Section, o fleetOpts) (err error) {
	dir, err := os.MkdirTemp("", "hostmesh-fleet-")
	if err != nil {
		return err
	}
	m := newMesh(o.bin, filepath.Join(dir, "m"), 5, o.vms, 10, o.portBase)
	var fleet []*fleetHost
	defer func() {
		for _, h := range fleet {
			_ = h.agent.Shutdown()
			_ = h.rep.Close()
		}
		m.close()
		if err != nil {
			log.Printf("meshd logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	// A stopped bench (Ctrl-C, a timeout) stops its meshd too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			pprof.StopCPUProfile() // flushes the size's profile, if one runs
			m.close()
			log.Printf("fleet: stopped by a signal; meshd logs kept in %s", dir)
			os.Exit(130)
		}
	}()
	start := time.Now()
	if err := m.up(); err != nil {
		return err
	}
	log.Printf("fleet: 5 meshd settled in %s", time.Since(start).Round(time.Second))
	key, err := gossip.KeyFromString(m.key)
	if err != nil {
		return fmt.Errorf("gossip key: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A real sim host's facts, as every host of the fleet announces them
	// (with its own name and addresses): what the leader checks them
	// against (networks, CPU baseline) is then what it checks a meshd's.
	var hosts []fsm.HostFacts
	if err := m.call(m.api(0), "GET", "/v1/hosts", nil, &hosts); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	var template fsm.HostFacts
	for _, h := range hosts {
		if h.Name == "h2" {
			template = h
		}
	}
	if template.Name == "" {
		return fmt.Errorf("hosts: no h2 among %d", len(hosts))
	}
	var pts []fleetPoint
	defer func() { sec.Notes = append(sec.Notes, fleetNotes(pts)...) }()
	if o.gcPercent != 100 {
		debug.SetGCPercent(o.gcPercent)
		log.Printf("fleet: the bench's own GOGC is %d", o.gcPercent)
	}
	stopProfile := func() {}
	defer func() { stopProfile() }() // a size that never settles keeps its profile too
	for _, size := range o.sizes {
		t0 := time.Now()
		stopProfile = startSelfProfile(o, size)
		batch := time.Now()
		stopped := false
		for k := 5 + len(fleet); k < size; k++ {
			name := hostName(k)
			certFile, keyFile, err := m.certs.Host(pki.CertSpec{Name: name})
			if err != nil {
				return err
			}
			ht, err := pki.LoadHostTLS(m.certs.CAFile, certFile, keyFile)
			if err != nil {
				return fmt.Errorf("TLS of %s: %w", name, err)
			}
			rep, err := node.StartReplica(node.ReplicaConfig{Name: name, Bind: "127.0.0.1", TLS: ht, FSM: &countFSM{}})
			if err != nil {
				return err
			}
			f := template
			f.Name, f.RaftAddr, f.APIAddr = name, rep.Addr, rep.Addr
			a, err := gossip.Start(gossip.Config{Name: name, BindAddr: "127.0.0.1", Key: key, Logger: quiet}, f)
			if err != nil {
				_ = rep.Close()
				return fmt.Errorf("gossip of %s: %w", name, err)
			}
			fleet = append(fleet, &fleetHost{rep: rep, agent: a, facts: f})
			if _, err := benchkit.Poll(time.Minute, 50*time.Millisecond, name+" to join gossip", func() bool {
				_, err := a.Join(m.seeds)
				return err == nil
			}); err != nil {
				return err
			}
			if (k+1)%25 == 0 || k+1 == size {
				// Let the batch's joins land before the next.
				if err := fleetWait(m, k+1, 3*time.Minute); err != nil {
					return err
				}
				log.Printf("fleet: %d hosts joined (the last batch in %s)", k+1, time.Since(batch).Round(100*time.Millisecond))
				batch = time.Now()
				if o.budget > 0 && time.Since(start) > o.budget && k+1 < size {
					log.Printf("fleet: the growth budget of %s is spent: measuring at %d hosts, not %d", o.budget, k+1, size)
					size, stopped = k+1, true
					break
				}
			}
		}
		if err := fleetWait(m, size, 3*time.Minute); err != nil {
			return err
		}
		// The last joins' entries, pacing's grace and gossip's push/pulls
		// pass before the idle windows.
		time.Sleep(20 * time.Second)
		p, err := fleetMeasure(m, fleet, size, stopped, o)
		stopProfile()
		stopProfile = func() {}
		if err != nil {
			return err
		}
		p.grow = time.Since(t0)
		pts = append(pts, p)
		for _, s := range []struct {
			name, unit string
			v          []float64
		}{
			{fmt.Sprintf("fleet: idle leader CPU, %d hosts", size), "% of a core", p.cpu},
			{fmt.Sprintf("fleet: idle leader's messages sent per second, %d hosts", size), "msgs/s", p.msgs},
			{fmt.Sprintf("fleet: leader RSS, %d hosts", size), "MiB", []float64{p.rss}},
		} {
			sec.Series = append(sec.Series, benchkit.Series{Name: s.name, Unit: s.unit, Values: s.v})
		}
		if err := sec.Write(filepath.Join(o.dir, "partial-fleet.json")); err != nil {
			log.Printf("partial write: %v", err)
		}
		if stopped {
			break
		}
	}
	return fleetChecks(sec, m, fleet)
}

// startSelfProfile CPU-profiles this process until the returned func is
// called (growing to size n and measuring it), when o.selfProfile.
func startSelfProfile(o fleetOpts, n int) func() {
	if !o.selfProfile {
		return func() {}
	}
	f, err := os.Create(filepath.Join(o.dir, fmt.Sprintf("fleet-self-%d.pprof", n)))
	if err != nil {
		log.Printf("self profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Printf("self profile: %v", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		log.Printf("fleet: the bench's own CPU profile up to %d hosts in %s", n, f.Name())
	}
}

// fleetChecks measures, at the largest size, what the mesh promises besides
// an idle leader: gossip reaches every host and a failed leader is replaced
// (each goal < 2 s).
func fleetChecks(sec *benchkit.Section, m *mesh, fleet []*fleetHost) error {
	n := 5 + len(fleet)
	gs, err := fleetGossip(fleet, 5)
	if err != nil {
		return err
	}
	log.Printf("fleet %d hosts: gossip to every light host %s ms", n, joinF(gs))
	sec.Series = append(sec.Series, benchkit.Series{Name: fmt.Sprintf("fleet: a fact change gossiped to every light host, %d hosts", n), Unit: "ms", Values: gs})
	el, fo, err := fleetFailover(m, fleet)
	if err != nil {
		return err
	}
	log.Printf("fleet %d hosts: leader killed; a new leader named in %s, every light host follows it in %s", n, el.Round(time.Millisecond), fo.Round(time.Millisecond))
	sec.Series = append(sec.Series,
		benchkit.Series{Name: fmt.Sprintf("fleet: failover, a surviving voter names a new leader, %d hosts", n), Unit: "ms", Values: []float64{float64(el.Milliseconds())}},
		benchkit.Series{Name: fmt.Sprintf("fleet: failover, every light host follows the new leader, %d hosts", n), Unit: "ms", Values: []float64{float64(fo.Milliseconds())}})
	return nil
}

// fleetWait waits until the leader counts n hosts and n Raft servers.
func fleetWait(m *mesh, n int, timeout time.Duration) error {
	var last string
	_, err := benchkit.Poll(timeout, 250*time.Millisecond, fmt.Sprintf("%d hosts in the leader's state and Raft configuration", n), func() bool {
		st, err := m.status(0)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("leader %s, %d hosts, %d voters, %d non-voters", st.Leader, st.Hosts, len(st.Voters), len(st.Nonvoters))
		return st.Leader == "h1" && st.Hosts >= n && len(st.Voters)+len(st.Nonvoters) >= n
	})
	if err != nil {
		return fmt.Errorf("%w; last seen: %s", err, last)
	}
	return nil
}

// fleetPoint is what was measured at one size.
type fleetPoint struct {
	n              int
	cpu, msgs      []float64
	fleetCPU       float64 // this process (the light hosts), % of a core
	rss, anon      float64
	lagMax         uint64 // entries the furthest light host was behind the leader
	grow           time.Duration
	mem            string
	leaderIndex    uint64
	pacedNonvoters int
}

func fleetMeasure(m *mesh, fleet []*fleetHost, n int, last bool, o fleetOpts) (fleetPoint, error) {
	p := fleetPoint{n: n}
	pid := m.pid(0)
	self0, err := cpuTicks(os.Getpid())
	if err != nil {
		return p, err
	}
	t0 := time.Now()
	for r := 0; r < o.runs; r++ {
		w0, err := syscw(pid)
		if err != nil {
			return p, err
		}
		c0, err := cpuTicks(pid)
		if err != nil {
			return p, err
		}
		s := time.Now()
		time.Sleep(o.window)
		el := time.Since(s).Seconds()
		w1, err := syscw(pid)
		if err != nil {
			return p, err
		}
		c1, err := cpuTicks(pid)
		if err != nil {
			return p, err
		}
		p.cpu = append(p.cpu, float64(c1-c0)/clockTicks/el*100)
		p.msgs = append(p.msgs, float64(w1-w0)/el)
		log.Printf("fleet %d hosts window %d: leader %.2f%% of a core, %.0f msgs/s", n, r+1, p.cpu[r], p.msgs[r])
	}
	self1, err := cpuTicks(os.Getpid())
	if err != nil {
		return p, err
	}
	p.fleetCPU = float64(self1-self0) / clockTicks / time.Since(t0).Seconds() * 100
	if l, err := m.leader(); err != nil || l != 0 {
		return p, fmt.Errorf("the leader changed during the windows (%v)", err)
	}
	if p.rss, err = procStatusMiB(pid, "VmRSS:"); err != nil {
		return p, err
	}
	p.anon, _ = procStatusMiB(pid, "RssAnon:")
	st, err := m.status(0)
	if err != nil {
		return p, err
	}
	p.leaderIndex = st.AppliedIndex
	for _, h := range fleet {
		if a := h.rep.AppliedIndex(); a < st.AppliedIndex && st.AppliedIndex-a > p.lagMax {
			p.lagMax = st.AppliedIndex - a
		}
		if h.rep.Leader() != "h1" {
			return p, fmt.Errorf("light host %s follows %q, not h1", h.rep.Name, h.rep.Leader())
		}
	}
	p.mem = m.memBreakdown(0) + "; " + m.saveProfiles(0, o.dir, fmt.Sprintf("fleet-leader-%d", n))
	if o.perf > 0 && (n == o.sizes[len(o.sizes)-1] || last) {
		file := filepath.Join(o.dir, fmt.Sprintf("fleet-leader-%d.perf.txt", n))
		if err := perfLeader(pid, o.perf, file); err != nil {
			log.Printf("perf: %v", err)
		}
	}
	log.Printf("fleet %d hosts: leader RSS %.1f MiB (anon %.1f), the light hosts' process %.1f%% of a core, furthest light host %d entries behind", n, p.rss, p.anon, p.fleetCPU, p.lagMax)
	return p, nil
}

// fleetNotes fits the leader's CPU and messages per second over the
// measured sizes and draws them.
func fleetNotes(pts []fleetPoint) []string {
	if len(pts) == 0 {
		return nil
	}
	var notes []string
	var ns, cpu, msgs []float64
	top := 0.0
	for _, p := range pts {
		ns = append(ns, float64(p.n))
		cpu = append(cpu, benchkit.Median(p.cpu))
		msgs = append(msgs, benchkit.Median(p.msgs))
		top = max(top, benchkit.Median(p.cpu))
		notes = append(notes, fmt.Sprintf("Fleet, %d hosts (grown in %s): leader CPU %.2f %% of a core (windows %s), %.0f messages/s; leader RSS %.1f MiB (RssAnon %.1f); the light hosts' process %.1f %% of a core; every light host follows h1, the furthest %d entries behind the leader's %d after the windows. Leader memory: %s",
			p.n, p.grow.Round(time.Second), benchkit.Median(p.cpu), joinF(p.cpu), benchkit.Median(p.msgs), p.rss, p.anon, p.fleetCPU, p.lagMax, p.leaderIndex, p.mem))
	}
	if len(pts) >= 2 {
		ca, cb := fit(ns, cpu)
		ma, mb := fit(ns, msgs)
		notes = append(notes, fmt.Sprintf("Fleet model (measured, least-squares over %d sizes): leader CPU = %.2f + %.4f × hosts (%% of a core), messages/s = %.0f + %.2f × hosts; each added host costs the leader %.4f %% of a core and %.2f messages/s.",
			len(pts), ca, cb, ma, mb, cb, mb))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Idle leader CPU and messages by mesh size, fleet (measured; 50 columns = %.1f %% of a core):\n\n```\n", top)
	for i, p := range pts {
		bar := ""
		if top > 0 {
			bar = strings.Repeat("#", int(cpu[i]/top*50+0.5))
		}
		fmt.Fprintf(&b, "%5d hosts %-50s %5.2f %%  %5.0f msgs/s\n", p.n, bar, cpu[i], msgs[i])
	}
	b.WriteString("```")
	return append(notes, b.String())
}

func joinF(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}
