package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
)

// idleOpts configures the idle phase: the leader's cost in an idle mesh
// (issue 15) at several sizes, for one meshd binary or two (before and
// after a change, measured alternately in the same run).
type idleOpts struct {
	bin, baseline string
	sizes         []int
	window        time.Duration
	runs          int
	vms, portBase int
	perf          time.Duration // perf record the largest mesh's leader this long; 0: no profile
	dir           string
}

// idleSample is one window's figures.
type idleSample struct {
	leaderCPU, medianCPU, leaderWrites float64
}

// idlePhase starts a mesh of each size with each binary in turn, lets it
// settle, and measures idle windows: the leader's CPU (% of a core), the
// median host's, and the leader's write syscalls per second (each Raft
// RPC the leader sends is one write of its TLS connection; gossip goes
// over UDP sendto, which this counter leaves out).
func idlePhase(sec *benchkit.Section, o idleOpts) error {
	type side struct {
		name, bin string
	}
	sides := []side{{"after", o.bin}}
	if o.baseline != "" {
		sides = append(sides, side{"before", o.baseline})
	}
	var fits []sizePoint
	defer func() { sec.Notes = append(sec.Notes, modelNotes(fits, o.baseline != "")...) }()
	for k, n := range o.sizes {
		cpu := benchkit.Comparison{Name: fmt.Sprintf("idle leader CPU, %d hosts", n)}
		wr := benchkit.Comparison{Name: fmt.Sprintf("idle leader's Raft messages sent per second, %d hosts", n)}
		med := benchkit.Comparison{Name: fmt.Sprintf("idle median host CPU, %d hosts", n)}
		rss := benchkit.Comparison{Name: fmt.Sprintf("largest meshd RSS (idle), %d hosts", n)}
		for j := range sides {
			s := sides[(j+k)%len(sides)] // alternate which binary goes first
			samples, maxRSS, mem, err := idleMesh(o, s.bin, s.name, n)
			if err != nil {
				return fmt.Errorf("%s, %d hosts: %w", s.name, n, err)
			}
			into := func(c *benchkit.Comparison) *benchkit.Series {
				if s.name == "after" {
					return &c.Subject
				}
				return &c.Baseline
			}
			for _, x := range samples {
				into(&cpu).Values = append(into(&cpu).Values, x.leaderCPU)
				into(&wr).Values = append(into(&wr).Values, x.leaderWrites)
				into(&med).Values = append(into(&med).Values, x.medianCPU)
			}
			into(&rss).Values = append(into(&rss).Values, maxRSS)
			sec.Notes = append(sec.Notes, fmt.Sprintf("Memory, %s, %d hosts, idle: %s", s.name, n, mem))
		}
		for _, c := range []*benchkit.Comparison{&cpu, &wr, &med, &rss} {
			c.Subject.Name, c.Baseline.Name = "after", "before"
		}
		cpu.Subject.Unit, cpu.Baseline.Unit = "% of a core", "% of a core"
		med.Subject.Unit, med.Baseline.Unit = "% of a core", "% of a core"
		wr.Subject.Unit, wr.Baseline.Unit = "msgs/s", "msgs/s"
		rss.Subject.Unit, rss.Baseline.Unit = "MiB", "MiB"
		cpu.Note = fmt.Sprintf("user+system time of the leader over %s windows (/proc/PID/stat), %d windows per side", o.window, o.runs)
		wr.Note = "write(2) calls of the leader per second (/proc/PID/io syscw): one per Raft RPC sent on its TLS connections"
		rss.Note = "VmRSS, largest meshd of the mesh, once per side"
		sec.Comparisons = append(sec.Comparisons, cpu, wr, med, rss)
		if n == 100 {
			// The goals are about the (new) figures at 100 hosts,
			// not about the ratios.
			c, m, r := cpu.Subject, med.Subject, rss.Subject
			c.Name, m.Name, r.Name = "idle leader CPU at 100 hosts", "idle median host CPU at 100 hosts", "largest meshd RSS at 100 hosts (idle)"
			c.Goal, c.Met = "< 5 % of a core", benchkit.Bool(c.Median() < 5)
			m.Goal, m.Met = "≤ 1 % of a core", benchkit.Bool(m.Median() <= 1)
			_, worst := benchkit.MinMax(r.Values)
			r.Goal, r.Met, r.JudgedOn = "< 60 MiB", benchkit.Bool(worst < 60), "max"
			sec.Series = append(sec.Series, c, m, r)
		}
		fits = append(fits, sizePoint{n: n, after: cpu.Subject.Median(), before: cpu.Baseline.Median(),
			afterMsgs: wr.Subject.Median(), beforeMsgs: wr.Baseline.Median()})
		if err := sec.Write(filepath.Join(o.dir, "partial-idle.json")); err != nil {
			log.Printf("partial write: %v", err)
		}
	}
	return nil
}

// idleMesh runs one mesh of n hosts with bin and measures its idle
// windows; mem says where the leader's and the last host's RSS is.
func idleMesh(o idleOpts, bin, label string, n int) (samples []idleSample, maxRSS float64, mem string, err error) {
	dir, err := os.MkdirTemp("", "hostmesh-idle-")
	if err != nil {
		return nil, 0, "", err
	}
	m := newMesh(bin, filepath.Join(dir, "m"), n, o.vms, 10, o.portBase)
	defer func() {
		m.close()
		if err != nil {
			log.Printf("meshd logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	start := time.Now()
	if err := m.up(); err != nil {
		return nil, 0, "", err
	}
	// Let the joins' last entries, snapshots and gossip push/pulls pass:
	// the figure is about a mesh where nothing happens.
	time.Sleep(15 * time.Second)
	l, err := m.leader()
	if err != nil {
		return nil, 0, "", err
	}
	log.Printf("idle %s: %d hosts settled in %s, leader %s, load %s", label, n, time.Since(start).Round(time.Second), hostName(l), loadAvg())
	var out []idleSample
	for r := 0; r < o.runs; r++ {
		pid := m.pid(l)
		w0, err := syscw(pid)
		if err != nil {
			return nil, 0, "", err
		}
		t0 := time.Now()
		all, leader, err := m.meshCPU(o.window)
		if err != nil {
			return nil, 0, "", err
		}
		w1, err := syscw(pid)
		if err != nil {
			return nil, 0, "", err
		}
		if l2, _ := m.leader(); l2 != l {
			return nil, 0, "", fmt.Errorf("leader changed from %s to %s during an idle window", hostName(l), hostName(l2))
		}
		x := idleSample{leaderCPU: leader, medianCPU: benchkit.Median(all), leaderWrites: float64(w1-w0) / time.Since(t0).Seconds()}
		log.Printf("idle %s %d hosts window %d: leader %.2f%%, median host %.2f%%, leader writes %.0f/s", label, n, r+1, x.leaderCPU, x.medianCPU, x.leaderWrites)
		out = append(out, x)
	}
	lost := m.logCount("heartbeat timeout reached")
	log.Printf("idle %s %d hosts: %d \"heartbeat timeout reached\" lines in the hosts' logs (a follower that lost its leader), %d leader step-downs", label, n, lost, m.stepDowns())
	rss, _, err := m.meshRSS("VmRSS:")
	if err != nil {
		return nil, 0, "", err
	}
	_, maxRSS = benchkit.MinMax(rss)
	mem = "leader " + m.memBreakdown(l) + "; " + m.saveProfiles(l, o.dir, fmt.Sprintf("idle-leader-%s-%d", label, n)) +
		"; a non-voter " + m.memBreakdown(n-1) + "; " + m.saveProfiles(n-1, o.dir, fmt.Sprintf("idle-nonvoter-%s-%d", label, n))
	log.Printf("idle %s %d hosts memory: %s", label, n, mem)
	if o.perf > 0 && n == o.sizes[len(o.sizes)-1] {
		file := filepath.Join(o.dir, fmt.Sprintf("idle-leader-%s-%d.perf.txt", label, n))
		if err := perfLeader(m.pid(l), o.perf, file); err != nil {
			log.Printf("perf: %v", err)
		}
	}
	return out, maxRSS, mem, nil
}

// logCount counts the lines of every host's log that hold s.
func (m *mesh) logCount(s string) int {
	total := 0
	for i := 0; i < m.n; i++ {
		b, err := os.ReadFile(filepath.Join(m.dir, hostName(i)+".log"))
		if err == nil {
			total += strings.Count(string(b), s)
		}
	}
	return total
}

// syscw is the number of write syscalls process pid made.
func syscw(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("io of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("io of pid %d: no syscw", pid)
}

// perfLeader samples the leader's stacks with perf for d and writes the
// flat and caller-grouped reports to file.
func perfLeader(pid int, d time.Duration, file string) error {
	data := strings.TrimSuffix(file, ".txt") + ".data"
	rec := exec.Command("perf", "record", "-F", "499", "-g", "-o", data, "-p", strconv.Itoa(pid), "--", "sleep", strconv.Itoa(int(d.Seconds())))
	if b, err := rec.CombinedOutput(); err != nil {
		return fmt.Errorf("perf record: %w: %s", err, b)
	}
	flat, err := exec.Command("perf", "report", "-i", data, "--no-children", "--sort", "sym", "--stdio", "-g", "none").Output()
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	cum, err := exec.Command("perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g", "none").Output()
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	return os.WriteFile(file, append(append(flat, "\n\n==== with children ====\n\n"...), cum...), 0o644)
}

// sizePoint is the medians measured at one mesh size.
type sizePoint struct {
	n                     int
	after, before         float64 // leader CPU, % of a core
	afterMsgs, beforeMsgs float64 // leader's Raft messages/s
}

// fit is the least-squares line y = a + b·x.
func fit(xs, ys []float64) (a, b float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		b = (n*sxy - sx*sy) / d
	}
	return (sy - b*sx) / n, b
}

// modelNotes fits the leader's CPU and messages per second against the
// number of hosts (a line: each added host is one more follower) and
// extrapolates to 1,000 hosts, with an ASCII chart of the measured points.
func modelNotes(pts []sizePoint, withBefore bool) []string {
	if len(pts) < 2 {
		return nil
	}
	var ns, cpuA, cpuB, msgA, msgB []float64
	for _, p := range pts {
		ns = append(ns, float64(p.n))
		cpuA, cpuB = append(cpuA, p.after), append(cpuB, p.before)
		msgA, msgB = append(msgA, p.afterMsgs), append(msgB, p.beforeMsgs)
	}
	var notes []string
	line := func(label string, cpu, msgs []float64) {
		ca, cb := fit(ns, cpu)
		ma, mb := fit(ns, msgs)
		var ext []string
		for _, n := range []float64{200, 500, 1000} {
			ext = append(ext, fmt.Sprintf("%.0f hosts: %.1f %% of a core, %.0f msgs/s", n, ca+cb*n, ma+mb*n))
		}
		notes = append(notes, fmt.Sprintf("Model (%s): least-squares line over the measured sizes: leader CPU = %.2f + %.4f × hosts (%% of a core), "+
			"messages/s = %.0f + %.2f × hosts; each added host costs the leader %.4f %% of a core and %.2f messages/s. Extrapolated: %s.",
			label, ca, cb, ma, mb, cb, mb, strings.Join(ext, "; ")))
	}
	line("after", cpuA, msgA)
	if withBefore {
		line("before", cpuB, msgB)
	}
	// ASCII chart: one row per size, bars scaled to the largest CPU figure.
	top := 0.0
	for _, p := range pts {
		top = max(top, p.after)
		if withBefore {
			top = max(top, p.before)
		}
	}
	var b strings.Builder
	b.WriteString("Idle leader CPU by mesh size (# after, . before; 50 columns = ")
	fmt.Fprintf(&b, "%.1f %% of a core):\n\n```\n", top)
	for _, p := range pts {
		bar := func(v float64, c string) string {
			if !(top > 0) || !(v > 0) { // a side without values has a NaN median
				return ""
			}
			return strings.Repeat(c, int(v/top*50+0.5))
		}
		fmt.Fprintf(&b, "%4d hosts after  %-50s %5.2f %%\n", p.n, bar(p.after, "#"), p.after)
		if withBefore {
			fmt.Fprintf(&b, "%4d hosts before %-50s %5.2f %%\n", p.n, bar(p.before, "."), p.before)
		}
	}
	b.WriteString("```")
	notes = append(notes, b.String())
	return notes
}
