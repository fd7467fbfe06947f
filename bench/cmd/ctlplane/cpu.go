package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux build that matters).
const clockTicks = 100

// cpuTicks is the user+system CPU time a process has used, in ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of pid %d: short stat line", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu of pid %d: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return u + s, nil
}

// meshCPU measures each running host's CPU use over window, in percent of
// one core, and the leader's. The window is a measurement period, not a
// wait for a condition.
func (m *mesh) meshCPU(window time.Duration) (all []float64, leader float64, err error) {
	l, _ := m.leader()
	before := map[int]uint64{}
	for i := 0; i < m.n; i++ {
		if pid := m.pid(i); pid != 0 {
			if before[i], err = cpuTicks(pid); err != nil {
				return nil, 0, err
			}
		}
	}
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start).Seconds()
	for i, t0 := range before {
		t1, err := cpuTicks(m.pid(i))
		if err != nil {
			return nil, 0, err
		}
		pct := float64(t1-t0) / clockTicks / elapsed * 100
		all = append(all, pct)
		if i == l {
			leader = pct
		}
	}
	return all, leader, nil
}
