package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rssMiB reads VmRSS of a process from /proc: the resident memory the goal
// is about (shared pages counted, as top shows them).
func rssMiB(pid int) (float64, error) { return procStatusMiB(pid, "VmRSS:") }

// procStatusMiB reads one kB field of /proc/PID/status in MiB. RssAnon is
// the part of VmRSS no other process shares (heap, stacks): the binary's
// pages in RssFile are shared by every meshd on a machine.
func procStatusMiB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("rss of pid %d: %q: %w", pid, rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("rss of pid %d: no %s line", pid, field)
}

// meshRSS returns the RSS of every running host in MiB, and the leader's;
// field is "VmRSS:" or "RssAnon:".
func (m *mesh) meshRSS(field string) (all []float64, leader float64, err error) {
	l, _ := m.leader()
	for i := 0; i < m.n; i++ {
		pid := m.pid(i)
		if pid == 0 {
			continue
		}
		r, err := procStatusMiB(pid, field)
		if err != nil {
			return nil, 0, err
		}
		all = append(all, r)
		if i == l {
			leader = r
		}
	}
	return all, leader, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
