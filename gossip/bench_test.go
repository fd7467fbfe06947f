package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkPropagation100 runs 100 Fast agents on loopback in one process and
// measures how long one Update takes to reach all of them. The custom
// metrics are the mean and the worst time per update.
//
//	GOFLAGS=-tags=libvirt_dlopen go test -run '^$' -bench Propagation100 -benchtime 20x ./gossip/
func BenchmarkPropagation100(b *testing.B) {
	const n = 100
	agents := make([]*Agent, n)
	for i := range agents {
		name := fmt.Sprintf("h%03d", i)
		agents[i] = startAgent(b, testConfig(name), testFacts(name))
		if i > 0 {
			// Join through a few seeds so no single agent serves every
			// push/pull of the start-up.
			seed := agents[i%min(i, 4)].Addr()
			waitFor(b, time.Minute, name+" to join", func() bool {
				_, err := agents[i].Join([]string{seed})
				return err == nil
			})
		}
	}
	took := waitFor(b, 2*time.Minute, "100 agents to converge", func() bool {
		for _, a := range agents {
			if knownRecords(a) != n {
				return false
			}
		}
		return true
	})
	b.Logf("100 agents converged %v after the last join", took)

	var times []time.Duration
	var pullsBefore uint64
	for _, a := range agents {
		pullsBefore += a.pulls.Load()
	}
	i := 0
	for b.Loop() {
		src := agents[(i*37)%n]
		f := testFacts(src.Name())
		f.MemFreeMiB = uint64(i + 1)
		want := version(src, src.Name()) + 1
		start := time.Now()
		src.Update(f)
		waitFor(b, time.Minute, "update to reach all agents", func() bool {
			for _, a := range agents {
				if version(a, src.Name()) < want {
					return false
				}
			}
			return true
		})
		times = append(times, time.Since(start))
		i++
	}
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(times)), "ms/update-to-100")
	b.ReportMetric(float64(slices.Max(times).Milliseconds()), "max-ms/update-to-100")
	var pulls uint64
	for _, a := range agents {
		pulls += a.pulls.Load()
	}
	b.ReportMetric(float64(pulls-pullsBefore)/float64(len(times)), "pulls/update")
}

// knownRecords counts the alive hosts a holds facts for, without copying.
func knownRecords(a *Agent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := 0
	for _, e := range a.members {
		if e.seen && e.have && e.status == StatusAlive {
			c++
		}
	}
	return c
}

// version is the facts version a holds for host.
func version(a *Agent, host string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.members[host]; ok {
		return e.rec.Version
	}
	return 0
}
