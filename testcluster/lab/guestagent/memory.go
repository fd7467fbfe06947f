package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const pageSize = 4096

// fillHeadroomMiB is memory left to the kernel, the Go runtime and the HTTP
// server when the fill is capped: a fill that runs the guest out of memory
// gets the agent OOM-killed and the guest stops counting.
const fillHeadroomMiB = 24

// fill allocates mib MiB and writes non-zero bytes to every page: QEMU sends
// zero pages as a few bytes, so only touched pages make the migration move
// real data. With a marker the bytes are the marker repeated, so a capture
// of a cleartext migration stream finds it in every page sent (and one of
// an encrypted stream never does). The fill is capped to what the guest has
// available, with a console line saying so. At least 8 MiB is allocated so
// that dirty has pages to touch.
func fill(mib int, marker string) []byte {
	if avail, err := memAvailableMiB(); err == nil && mib > avail-fillHeadroomMiB {
		capped := max(avail-fillHeadroomMiB, 0)
		fmt.Printf("hm-agent: fill %d MiB capped to %d MiB (MemAvailable %d MiB)\n", mib, capped, avail)
		mib = capped
	}
	size := mib
	if size < 8 {
		size = 8
	}
	mem := make([]byte, size<<20)
	if mib > 0 {
		start := time.Now()
		if marker != "" {
			for i := 0; i < len(mem); {
				i += copy(mem[i:], marker)
			}
		} else {
			for i := range mem {
				mem[i] = byte(i*7 + 1)
			}
		}
		fmt.Printf("hm-agent filled %d MiB in %s\n", mib, time.Since(start).Round(time.Millisecond))
	}
	return mem
}

// dirtied counts the pages dirty has written, for the HTTP status line.
var dirtied atomic.Int64

// dirty writes one byte per page at mibps MiB of pages per second, cycling
// through mem: this is the dirty rate a pre-copy migration has to outrun. It
// keeps to the rate by elapsed time, not by ticks, so a vCPU that was not
// scheduled for a while (TCG, a busy host) catches up instead of falling
// behind; catch-up is limited to one second's worth.
func dirty(mem []byte, mibps int) {
	if mibps <= 0 {
		return
	}
	pages := len(mem) / pageSize
	perSec := float64(mibps) * (1 << 20) / pageSize
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	p, v := 0, byte(1)
	start, done := time.Now(), 0
	for range t.C {
		due := int(time.Since(start).Seconds() * perSec)
		if due-done > int(perSec) {
			done = due - int(perSec)
		}
		for ; done < due; done++ {
			mem[p*pageSize]++
			mem[p*pageSize+1] = v
			p++
			if p == pages {
				p, v = 0, v+1
			}
		}
		dirtied.Store(int64(done))
	}
}

// memAvailableMiB reads MemAvailable from /proc/meminfo.
func memAvailableMiB() (int, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, fmt.Errorf("MemAvailable %q: %w", f[1], err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemAvailable in /proc/meminfo")
}
