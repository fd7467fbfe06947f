// Command guestagent is the workload inside every lab guest. It runs from the
// guest's initramfs (static, CGO_ENABLED=0) and makes a migration observable:
//
//   - it prints "counter N" on the serial console every second, so one log
//     that survives the migration shows the guest never stopped or rebooted;
//   - it serves HTTP on :80 ("/" answers hostname and counter) and a TCP echo
//     on :7, so clients can check the guest's network before and after;
//   - it fills and then dirties memory at rates given on the kernel command
//     line (hm.fill=MiB, hm.dirty=MiBps), to give the migration real work;
//     the fill repeats hm.marker= when given, for captures of the stream;
//   - it writes and reads a marker on its virtio disk (/disk/write,
//     /disk/read), to show data written before a migration is still there.
package main

import (
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// counter is the number of seconds the agent has been running.
var counter atomic.Int64

func main() {
	args := parseCmdline(readCmdline())
	host, _ := os.Hostname()
	avail, _ := memAvailableMiB()
	fmt.Printf("hm-agent start host=%s fill=%dMiB dirty=%dMiBps marker=%dB available=%dMiB\n", host, args.fillMiB, args.dirtyMiBps, len(args.marker), avail)
	mem := fill(args.fillMiB, args.marker)
	go dirty(mem, args.dirtyMiBps)
	go serveEcho(":7")
	go serveHTTP(":80")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n := counter.Add(1)
		fmt.Printf("counter %d\n", n)
		<-t.C
	}
}

type cmdline struct {
	fillMiB    int
	dirtyMiBps int
	marker     string // the fill pattern; empty: a byte sequence
}

func readCmdline() string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		log.Printf("hm-agent: read /proc/cmdline: %v", err)
	}
	return string(b)
}

// parseCmdline reads the hm.* words the kernel passed through to init.
func parseCmdline(s string) cmdline {
	var c cmdline
	for _, w := range strings.Fields(s) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		switch k {
		case "hm.fill":
			if err == nil {
				c.fillMiB = n
			}
		case "hm.dirty":
			if err == nil {
				c.dirtyMiBps = n
			}
		case "hm.marker":
			c.marker = v
		}
	}
	return c
}
