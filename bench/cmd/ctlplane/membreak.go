package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// memBreakdown says where one meshd's resident memory is: VmRSS split into
// RssAnon (heap, stacks: this process's own) and RssFile (the binary's
// pages, shared by every meshd on a machine), the largest mappings of
// /proc/PID/smaps by Rss, and the Go runtime's own account from the host's
// /metrics (heap in use, heap held but idle, stacks, goroutines, the next
// GC target). It is how the RSS goal's misses are explained, not a figure.
func (m *mesh) memBreakdown(i int) string {
	pid := m.pid(i)
	if pid == 0 {
		return hostName(i) + ": not running"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pid %d):", hostName(i), pid)
	for _, f := range []string{"VmRSS:", "RssAnon:", "RssFile:", "RssShmem:", "VmHWM:", "Threads:"} {
		if f == "Threads:" {
			if v, err := procStatusField(pid, f); err == nil {
				fmt.Fprintf(&b, " threads %s;", v)
			}
			continue
		}
		if v, err := procStatusMiB(pid, f); err == nil {
			fmt.Fprintf(&b, " %s %.1f MiB;", strings.TrimSuffix(f, ":"), v)
		}
	}
	if maps, err := smapsByName(pid); err == nil {
		b.WriteString(" largest mappings by Rss:")
		for k, mp := range maps {
			if k == 6 {
				break
			}
			fmt.Fprintf(&b, " %s %.1f MiB (anon %.1f);", mp.name, mp.rss/1024, mp.anon/1024)
		}
	}
	var metrics strings.Builder
	if err := m.raw(m.api(i), "GET", "/metrics", nil, &metrics); err == nil {
		b.WriteString(" Go runtime:")
		for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes",
			"go_memstats_stack_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes", "go_goroutines", "go_threads"} {
			if v, ok := metricValue(metrics.String(), name); ok {
				short := strings.TrimPrefix(strings.TrimPrefix(name, "go_memstats_"), "go_")
				if strings.HasSuffix(name, "_bytes") {
					fmt.Fprintf(&b, " %s %.1f MiB;", strings.TrimSuffix(short, "_bytes"), v/(1<<20))
				} else {
					fmt.Fprintf(&b, " %s %.0f;", short, v)
				}
			}
		}
	} else {
		fmt.Fprintf(&b, " /metrics: %v", err)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// procStatusField is one raw field of /proc/PID/status.
func procStatusField(pid int, field string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", fmt.Errorf("status of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("status of pid %d: no %s", pid, field)
}

// mapping is the Rss of all mappings with one name, in kB.
type mapping struct {
	name      string
	rss, anon float64
}

// smapsByName sums /proc/PID/smaps by mapping name ("[anon]" for the
// unnamed ones: the Go heap and stacks), largest Rss first.
func smapsByName(pid int) ([]mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("smaps of pid %d: %w", pid, err)
	}
	defer f.Close()
	sums := map[string]*mapping{}
	var cur *mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line
			name := "[anon]"
			if len(fields) >= 6 {
				name = fields[5]
			}
			if sums[name] == nil {
				sums[name] = &mapping{name: name}
			}
			cur = sums[name]
			continue
		}
		if cur == nil || len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			cur.rss += v
		case "Anonymous:":
			cur.anon += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps of pid %d: %w", pid, err)
	}
	out := make([]mapping, 0, len(sums))
	for _, mp := range sums {
		out = append(out, *mp)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].rss > out[b].rss })
	return out, nil
}

// metricValue is the value of an unlabelled metric in Prometheus' text
// format.
func metricValue(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// saveProfiles fetches host i's heap and goroutine profiles (meshd's admin
// route /v1/debug/pprof/{profile}) into dir as prefix.heap.pb.gz and
// prefix.goroutines.txt, and summarises them: the heap's largest in-use
// allocation sites (`go tool pprof -top`) and the largest groups of
// goroutines by the first frame outside the runtime and the network poller.
func (m *mesh) saveProfiles(i int, dir, prefix string) string {
	var heap, gor strings.Builder
	if err := m.raw(m.api(i), "GET", "/v1/debug/pprof/heap", nil, &heap); err != nil {
		return fmt.Sprintf("heap profile of %s: %v", hostName(i), err)
	}
	heapFile := filepath.Join(dir, prefix+".heap.pb.gz")
	if err := os.WriteFile(heapFile, []byte(heap.String()), 0o644); err != nil {
		return fmt.Sprintf("heap profile: %v", err)
	}
	var out []string
	top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=10", heapFile).Output()
	if err == nil {
		var lines []string
		started := false
		for _, line := range strings.Split(string(top), "\n") {
			f := strings.Fields(line)
			if len(f) >= 5 && f[0] == "flat" {
				started = true
				continue
			}
			if started && len(f) >= 6 {
				lines = append(lines, fmt.Sprintf("%s %s", f[5], f[0]))
			}
		}
		out = append(out, "heap in use by site (flat): "+strings.Join(lines, ", "))
	}
	if err := m.raw(m.api(i), "GET", "/v1/debug/pprof/goroutine?debug=1", nil, &gor); err == nil {
		_ = os.WriteFile(filepath.Join(dir, prefix+".goroutines.txt"), []byte(gor.String()), 0o644)
		out = append(out, "goroutines: "+goroutineGroups(gor.String(), 8))
	}
	return strings.Join(out, "; ")
}

// goroutineGroups reads a goroutine profile in its debug=1 text form and
// names its k largest groups by their first frame outside the runtime, the
// poller and the standard library's I/O.
func goroutineGroups(text string, k int) string {
	counts := map[string]int{}
	total := 0
	for _, block := range strings.Split(text, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) == 0 {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(lines[0], "%d @", &n); err != nil {
			continue
		}
		name := "?"
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "#" {
				continue
			}
			fn := f[2]
			if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "net.") ||
				strings.HasPrefix(fn, "crypto/tls.") || strings.HasPrefix(fn, "bufio.") || strings.HasPrefix(fn, "io.") ||
				strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "time.") || strings.HasPrefix(fn, "os.") {
				continue
			}
			name = fn
			break
		}
		counts[name] += n
		total += n
	}
	type group struct {
		name string
		n    int
	}
	var gs []group
	for name, n := range counts {
		gs = append(gs, group{name, n})
	}
	sort.Slice(gs, func(a, b int) bool { return gs[a].n > gs[b].n })
	parts := []string{fmt.Sprintf("total %d", total)}
	for j, g := range gs {
		if j == k {
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", g.n, g.name))
	}
	return strings.Join(parts, ", ")
}
