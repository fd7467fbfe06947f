package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// linkSampleEvery is the link sampler's period: fine enough to see the
// ~1 s gaps between a drain's waves, cheap enough (one read of a procfs
// file, no process started) not to load the 2-core lab.
const linkSampleEvery = 100 * time.Millisecond

// linkSample is the migration interface's transmit counter at one moment.
type linkSample struct {
	at time.Time
	tx uint64
}

// linkSampler records h's migration interface's transmitted bytes every
// linkSampleEvery, so a drain's link utilisation can be told over time:
// where the link idles, not only how long the whole drain took.
type linkSampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples []linkSample
	err     error
}

// sampleLink starts sampling h's MigIface. It reads the counter from
// /proc/PID/net/dev of h's namespace holder: that file shows the network
// namespace of the process, so no `ip -n` runs every 100 ms.
func sampleLink(h *lab.Host) *linkSampler {
	s := &linkSampler{stop: make(chan struct{}), done: make(chan struct{})}
	path := fmt.Sprintf("/proc/%d/net/dev", h.HolderPID)
	read := func() {
		tx, err := devTx(path, lab.MigIface)
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			return
		}
		s.samples = append(s.samples, linkSample{time.Now(), tx})
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(linkSampleEvery)
		defer t.Stop()
		read()
		for {
			select {
			case <-s.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return s
}

// finish stops the sampler and returns its samples.
func (s *linkSampler) finish() ([]linkSample, error) {
	close(s.stop)
	<-s.done
	return s.samples, s.err
}

// devTx reads iface's transmitted bytes from a /proc/net/dev file.
func devTx(path, iface string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("link counters: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			return 0, fmt.Errorf("link counters of %s in %s: %q", iface, path, line)
		}
		// receive: bytes packets errs drop fifo frame compressed multicast; then transmit bytes
		tx, err := strconv.ParseUint(f[8], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("link counters of %s in %s: %w", iface, path, err)
		}
		return tx, nil
	}
	return 0, fmt.Errorf("link counters: no %s in %s", iface, path)
}

// linkUse is where a drain's time went against its physical limit (bytes
// ÷ capacity), from the link samples between its start and its end:
//
//	took − limit = head + gaps + tail
//
// head: from the start to the first interval the link carried bytes (the
// first wave's setup: nothing to overlap it with); tail: from the last such
// interval to the end (the last migration's completion and the command's
// return); gaps: the time between them the link did not carry capacity
// (the hand-overs between waves, and any slowness of the transfers).
type linkUse struct {
	head, gaps, tail float64 // seconds
	// idle lists the stretches between the first and the last bytes when
	// the link carried under half its capacity: offset from the start and
	// length, seconds.
	idle [][2]float64
	// perSecond is the MiB sent in each second from the start.
	perSecond []float64
}

// busyMiBps is the rate above which an interval counts as carrying the
// drain's bytes for head and tail: above the management chatter and a
// migration in setup at 1 MiB/s, far below any transfer at its share.
const busyMiBps = 4

// analyzeLink splits a drain's time (start to end) over its samples at
// capacity MiB/s (see linkUse).
func analyzeLink(samples []linkSample, start, end time.Time, capacity float64) linkUse {
	var u linkUse
	if len(samples) < 2 {
		return u
	}
	first, last := -1, -1
	for i := 1; i < len(samples); i++ {
		if rate(samples[i-1], samples[i]) >= busyMiBps {
			if first < 0 {
				first = i - 1
			}
			last = i
		}
	}
	if first < 0 {
		return u
	}
	t0, t1 := samples[first].at, samples[last].at
	u.head = t0.Sub(start).Seconds()
	u.tail = end.Sub(t1).Seconds()
	u.gaps = t1.Sub(t0).Seconds() - mib(samples[last].tx-samples[first].tx)/capacity
	var gapAt time.Time
	for i := first + 1; i <= last; i++ {
		low := rate(samples[i-1], samples[i]) < capacity/2
		switch {
		case low && gapAt.IsZero():
			gapAt = samples[i-1].at
		case !low && !gapAt.IsZero():
			u.idle = append(u.idle, [2]float64{gapAt.Sub(start).Seconds(), samples[i-1].at.Sub(gapAt).Seconds()})
			gapAt = time.Time{}
		}
	}
	// each interval's bytes go to the second it starts in
	for i := 1; i < len(samples); i++ {
		sec := int(samples[i-1].at.Sub(start) / time.Second)
		if sec < 0 {
			continue
		}
		for len(u.perSecond) <= sec {
			u.perSecond = append(u.perSecond, 0)
		}
		u.perSecond[sec] += mib(samples[i].tx - samples[i-1].tx)
	}
	return u
}

// rate is the MiB/s sent between two samples.
func rate(a, b linkSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return mib(b.tx-a.tx) / d
}

// String prints the split and the timeline on one line each.
func (u linkUse) String() string {
	var idle []string
	for _, g := range u.idle {
		idle = append(idle, fmt.Sprintf("%.1f s+%.1f", g[0], g[1]))
	}
	var ps []string
	for _, v := range u.perSecond {
		ps = append(ps, strconv.Itoa(int(v+0.5)))
	}
	return fmt.Sprintf("head %.2f s, gaps %.2f s, tail %.2f s; under half the capacity at %s\n  MiB per second: %s",
		u.head, u.gaps, u.tail, strings.Join(idle, ", "), strings.Join(ps, " "))
}
