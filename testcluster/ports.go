package testcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// freePorts picks k free ports below the kernel's ephemeral range, in this
// process's own block of ports (see portBlock). A host keeps its ports
// across Crash and Restart (its addresses are in the Raft configuration);
// a port of the ephemeral range, free while the host was down, could
// meanwhile be the local end of any outgoing connection (the fault
// schedules, four meshes at a time, met "bind: address already in use" on
// a restart). Below the range only another freePorts could take it: in
// this process it never hands out a port it gave before (until Close
// releases a cluster's), and another test process picks in a block of its
// own.
func freePorts(k int) ([]int, error) {
	lo, hi := portBlock()
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var out []int
	for tries := 0; len(out) < k; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("free port: none found in %d..%d", lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		if !takePort(p) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		// the gossip port is UDP too
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			l.Close()
			continue
		}
		u.Close()
		lns = append(lns, l)
		out = append(out, p)
	}
	return out, nil
}

// portBlockSize is how many ports one test process picks from: the soak's
// 8 meshes at a time hold some 120.
const portBlockSize = 2000

var (
	blockOnce     sync.Once
	blockLo       int
	blockHi       int
	blockLockFile *os.File // held open: the flock lasts as long as the process
)

// portBlock returns this process's block of ports [lo, hi). go test runs
// packages in parallel processes (testcluster, testcluster/e2e, daemon all
// build meshes), and the soak ran beside other engineers' tests: a port
// of a crashed host, free until its Restart, was taken by a mesh of
// another process (seed 2418: "api listener: listen tcp 127.0.0.1:32081:
// bind: address already in use"). Each process claims a block with a
// non-blocking flock on a file of the temp dir, released by the kernel
// when the process ends, however it ends. With every block claimed it
// shares the whole range, as before.
func portBlock() (lo, hi int) {
	blockOnce.Do(func() {
		lo0, hi0 := 10000, ephemeralLow()
		blockLo, blockHi = lo0, hi0
		n := (hi0 - lo0) / portBlockSize
		if n < 2 {
			return
		}
		first := rand.IntN(n)
		for k := range n {
			b := (first + k) % n
			name := filepath.Join(os.TempDir(), "hostmesh-testcluster-ports-"+strconv.Itoa(b)+".lock")
			f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
			if err != nil {
				continue
			}
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
				f.Close()
				continue
			}
			blockLockFile = f
			blockLo, blockHi = lo0+b*portBlockSize, lo0+(b+1)*portBlockSize
			return
		}
	})
	return blockLo, blockHi
}

// givenPorts are the ports freePorts handed out in this process.
var givenPorts sync.Map

// takePort reserves p for its caller; false when it was given already.
func takePort(p int) bool {
	_, taken := givenPorts.LoadOrStore(p, true)
	return !taken
}

// releasePorts returns ports to freePorts.
func releasePorts(ps ...int) {
	for _, p := range ps {
		givenPorts.Delete(p)
	}
}

// ephemeralLow is where the kernel's ephemeral ports begin (Linux's
// ip_local_port_range; 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || v <= 11000 {
		return 32768
	}
	return v
}
