package main

import (
	"fmt"
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

// dirty writes one byte per page at mibps MiB of pages per second, in 10 ms
// steps, cycling through mem: this is the dirty rate a pre-copy migration
// has to outrun.
func dirty(mem []byte, mibps int) {
	if mibps <= 0 {
		return
	}
	pages := len(mem) / pageSize
	perTick := mibps << 20 / pageSize / 100
	if perTick < 1 {
		perTick = 1
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	p, v := 0, byte(1)
	for range t.C {
		for i := 0; i < perTick; i++ {
			mem[p*pageSize]++
			mem[p*pageSize+1] = v
			p++
			if p == pages {
				p, v = 0, v+1
			}
		}
	}
}
