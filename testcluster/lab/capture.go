package lab

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Capture is a packet capture on one interface of a host: an AF_PACKET
// socket opened inside the host's network namespace and read until Stop.
// It counts the frames and bytes the host sent and received there and how
// many frames hold a marker whole — what a test would ask of tcpdump, with
// nothing to install and no pcap to parse. Frames are searched one by one;
// a marker repeated through a guest's pages is whole in any frame that
// carries a page of them.
type Capture struct {
	host, iface string
	fd          int
	markers     [][]byte
	stop        atomic.Bool
	done        chan struct{}

	mu    sync.Mutex
	stats CaptureStats
	err   error
}

// CaptureStats is what a capture saw.
type CaptureStats struct {
	// Frames and Bytes count every frame read, both directions.
	Frames, Bytes uint64
	// OutFrames and OutBytes count the frames the host sent on the interface.
	OutFrames, OutBytes uint64
	// Hits counts, per marker given to Capture, the frames that held it.
	Hits []uint64
	// Drops counts frames the kernel dropped because the reader fell behind
	// (PACKET_STATISTICS): a capture with drops did not see everything.
	Drops uint64
}

// captureBuf fits the largest frame a veth hands a packet socket: with GSO
// the kernel shows one 64 KiB super-frame, not its 1500-byte segments.
const captureBuf = 256 << 10

// captureRcvBuf is the socket's receive buffer: a migration stream at a
// few hundred MiB/s must not overrun the reader between its reads.
const captureRcvBuf = 64 << 20

// Capture starts capturing on iface (MigIface, say) in the host's network
// namespace, searching every frame for each of markers.
func (h *Host) Capture(iface string, markers ...[]byte) (*Capture, error) {
	fd, err := h.packetSocket(iface)
	if err != nil {
		return nil, err
	}
	c := &Capture{host: h.Name, iface: iface, fd: fd, done: make(chan struct{})}
	for _, m := range markers {
		if len(m) == 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("host %s: capture on %s: empty marker", h.Name, iface)
		}
		c.markers = append(c.markers, bytes.Clone(m))
	}
	c.stats.Hits = make([]uint64, len(markers))
	go c.read()
	return c, nil
}

// packetSocket opens an AF_PACKET socket bound to iface inside the host's
// network namespace. A socket keeps the namespace it was created in, so
// only its creation runs there: on a thread of its own, locked for the
// switch and discarded (left locked) if switching back fails.
func (h *Host) packetSocket(iface string) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err, restored := inNetNS(h.NetNS, func() (int, error) { return bindPacket(iface) })
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return -1, fmt.Errorf("host %s: capture on %s: %w", h.Name, iface, r.err)
	}
	return r.fd, nil
}

// inNetNS runs fn with the calling (locked) thread in network namespace ns
// and switches back; restored is false when the thread could not return.
func inNetNS(ns string, fn func() (int, error)) (fd int, err error, restored bool) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return -1, err, true
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return -1, err, true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("enter namespace %s: %w", ns, err), true
	}
	fd, err = fn()
	if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("leave namespace %s: %w", ns, serr), false
	}
	return fd, err, true
}

// bindPacket opens a packet socket for every protocol on iface, with a
// large receive buffer and a read timeout so the reader notices Stop.
func bindPacket(iface string) (int, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return -1, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureRcvBuf); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket: receive buffer: %w", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket: read timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind packet socket to %s: %w", iface, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read takes frames until Stop; a frame longer than the buffer still counts
// its whole length (MSG_TRUNC) and is searched as far as it was read.
func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, captureBuf)
	for !c.stop.Load() {
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("host %s: capture on %s: %w", c.host, c.iface, err)
			c.mu.Unlock()
			return
		}
		frame := buf[:min(n, len(buf))]
		out := false
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			out = true
		}
		c.mu.Lock()
		c.stats.Frames++
		c.stats.Bytes += uint64(n)
		if out {
			c.stats.OutFrames++
			c.stats.OutBytes += uint64(n)
		}
		for i, m := range c.markers {
			if bytes.Contains(frame, m) {
				c.stats.Hits[i]++
			}
		}
		c.mu.Unlock()
	}
}

// Stats returns what the capture saw so far.
func (c *Capture) Stats() CaptureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Hits = append([]uint64(nil), s.Hits...)
	return s
}

// Stop ends the capture, closes the socket and returns what it saw, drops
// included; an error means the reader failed before Stop.
func (c *Capture) Stop() (CaptureStats, error) {
	c.stop.Store(true)
	<-c.done
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	unix.Close(c.fd)
	s := c.Stats()
	if err == nil {
		s.Drops = uint64(st.Drops)
	}
	c.mu.Lock()
	rerr := c.err
	c.mu.Unlock()
	if rerr == nil && err != nil {
		rerr = fmt.Errorf("host %s: capture on %s: statistics: %w", c.host, c.iface, err)
	}
	return s, rerr
}
