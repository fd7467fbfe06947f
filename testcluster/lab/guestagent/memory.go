package main

import (
	"fmt"
	"sync/atomic"
	"time"
)

const pageSize = 4096

// fill allocates mib MiB and writes non-zero bytes to every page: QEMU sends
// zero pages as a few bytes, so only touched pages make the migration move
// real data. At least 8 MiB is allocated so that dirty has pages to touch.
func fill(mib int) []byte {
	size := mib
	if size < 8 {
		size = 8
	}
	mem := make([]byte, size<<20)
	if mib > 0 {
		start := time.Now()
		for i := range mem {
			mem[i] = byte(i*7 + 1)
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
