package testcluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// slotSampler checks the slot limits on a ticker through a whole fault
// schedule, faults included, on both sides of the truth:
//
//   - in the leader's state (slotSample: slots in use per host and cluster,
//     the auto bandwidth, the sim hosts' memory);
//   - on the hypervisors: the migration jobs the sim hosts run out of and
//     into each host, and per cluster, never more than the limits. This is
//     the stronger half: a migration settled in the state while its job
//     ran on would free a slot that the hypervisor still uses, and a new
//     grant would overrun the host.
//
// take returns what exceeded a limit since the last take, each finding
// once, with the number of samples it was seen in.
type slotSampler struct {
	c    *Cluster
	vms  []string
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples int
	seen    map[string]int
}

func (c *Cluster) sampleSlots(interval time.Duration, vms []string) *slotSampler {
	s := &slotSampler{c: c, vms: vms, stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]int{}}
	go s.loop(interval)
	return s
}

func (s *slotSampler) loop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		l := s.c.leaderOrNil()
		if l == nil {
			continue
		}
		bad, _ := s.c.slotSample(l)
		var limits map[string]fsm.Cluster
		hostCluster := map[string]string{}
		l.FSM().Read(func(st *fsm.State) {
			limits = map[string]fsm.Cluster{}
			for name, h := range st.Hosts {
				hostCluster[name] = h.Cluster
				limits[h.Cluster] = st.Cluster(h.Cluster)
			}
		})
		bad = append(bad, s.c.hypervisorSlotViolations(s.vms, hostCluster, limits)...)
		s.mu.Lock()
		s.samples++
		for _, b := range bad {
			s.seen[b]++
		}
		s.mu.Unlock()
	}
}

// hypervisorSlotViolations counts the migration jobs the sim hosts run
// (outgoing: a VM's job; incoming: a reservation for a VM not yet
// switched over) against the limits of each host's cluster.
func (c *Cluster) hypervisorSlotViolations(vms []string, hostCluster map[string]string, limits map[string]fsm.Cluster) []string {
	out, in, cluster := map[string]int{}, map[string]int{}, map[string]int{}
	ctx := context.Background()
	for _, h := range c.Reg.Hosts() {
		for _, vm := range vms {
			st, err := h.Status(ctx, migrate.DomainRef{Name: vm})
			if err != nil || !st.Exists {
				continue
			}
			switch {
			case st.Incoming:
				in[h.Name()]++
			case st.Job != nil && st.Job.Kind == migrate.JobMigrationOut:
				out[h.Name()]++
				cluster[hostCluster[h.Name()]]++
			}
		}
	}
	var bad []string
	for h, k := range out {
		if lim := limits[hostCluster[h]].MaxOutgoing; k > lim {
			bad = append(bad, fmt.Sprintf("hypervisor %s runs %d outgoing migrations > %d", h, k, lim))
		}
	}
	for h, k := range in {
		if lim := limits[hostCluster[h]].MaxIncoming; k > lim {
			bad = append(bad, fmt.Sprintf("hypervisor %s receives %d migrations > %d", h, k, lim))
		}
	}
	for cl, k := range cluster {
		if lim := limits[cl].MaxConcurrent; k > lim {
			bad = append(bad, fmt.Sprintf("the hypervisors of cluster %s run %d migrations > %d", cl, k, lim))
		}
	}
	return bad
}

// take returns the findings since the last take ("slot limit: ... (in k of
// n samples)") and starts counting afresh.
func (s *slotSampler) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for b, k := range s.seen {
		out = append(out, fmt.Sprintf("slot limit: %s (in %d of %d samples)", b, k, s.samples))
	}
	sort.Strings(out)
	s.seen, s.samples = map[string]int{}, 0
	return out
}

// Stop ends sampling.
func (s *slotSampler) Stop() {
	close(s.stop)
	<-s.done
}
