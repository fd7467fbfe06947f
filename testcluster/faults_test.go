package testcluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The randomized fault matrix (issue 10). A schedule, drawn from a seed,
// runs a 5-host mesh with 30 sim VMs, drains one host and asks for random
// migrations, and injects faults at random times: a meshd crashed and
// restarted (its hypervisor's jobs run on), a whole host killed and
// brought back (its streams break, its hypervisor stops answering), a host
// partitioned off and healed. After each fault heals the checker runs
// (checker_test.go) and every violation is counted.
//
// `make unit` runs the fixed seeds below; `make soak SEEDS=N` runs N
// schedules (FAULT_SCHEDULES=N) and ends with "N schedules, V violations".
// A failing schedule prints the command that replays it.

// faultSeeds are the schedules every `make unit` runs.
var faultSeeds = []uint64{1, 2, 3}

// faultSettleBound is the checker's bound: after a fault healed, the mesh
// agrees with its hypervisors within it (the Fast settle bound plus a
// drain's migrations at the test's time scale).
const faultSettleBound = 60 * time.Second

// TestFaultSchedules runs the fault schedules: the fixed seeds, or
// FAULT_SEED=s (one, to replay), or FAULT_SCHEDULES=N (seeds 1..N, for
// make soak).
func TestFaultSchedules(t *testing.T) {
	seeds := faultSeeds
	if s := os.Getenv("FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: %v", s, err)
		}
		seeds = []uint64{v}
	} else if s := os.Getenv("FAULT_SCHEDULES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("FAULT_SCHEDULES=%q: want a positive count", s)
		}
		seeds = nil
		for i := 1; i <= n; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	total := 0
	for _, seed := range seeds {
		var v []string
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			v = runFaultSchedule(t, seed)
			for _, line := range v {
				t.Errorf("violation: %s", line)
			}
			if len(v) > 0 {
				t.Logf("replay: FAULT_SEED=%d go test ./testcluster/ -run TestFaultSchedules -count=1 -v", seed)
			}
		})
		total += len(v)
	}
	fmt.Printf("%d schedules, %d violations\n", len(seeds), total)
}

// runFaultSchedule runs one schedule and returns the checker's violations.
func runFaultSchedule(t *testing.T, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x7e57))
	// At this time scale a 1 GiB VM takes some 2.5 s at the default 52
	// MiB/s: the faults land in running migrations, not between them.
	c := New(t, Options{Hosts: 5, VMsPerHost: 6, VMMemMiB: 1024, TimeScale: 8})
	c.waitVMs(30)
	vms := c.vmNames()
	var violations []string
	logf := func(format string, args ...any) { t.Logf("seed %d: "+format, append([]any{seed}, args...)...) }

	// the drain: a random host
	drained := rng.IntN(5)
	if err := c.Call(c.Leader(10*time.Second).APIAddr(), "POST", "/v1/hosts/"+HostName(drained)+"/drain", map[string]string{}, nil); err != nil {
		logf("drain of %s refused: %v", HostName(drained), err)
	} else {
		logf("draining %s", HostName(drained))
	}
	faults := 3
	for f := 0; f < faults; f++ {
		// random migrations, to any host placement picks
		for k := rng.IntN(4); k > 0; k-- {
			vm := vms[rng.IntN(len(vms))]
			if l := c.leaderOrNil(); l != nil {
				if id, err := c.Migrate(l.APIAddr(), migrateTo(vm, "", 0)); err == nil {
					logf("migrate %s: %s", vm, id)
				}
			}
		}
		// the fault lands while a migration runs (when one does within 5 s),
		// at a random moment of it
		_ = Poll(5*time.Second, 50*time.Millisecond, func() bool {
			l := c.leaderOrNil()
			return l != nil && len(l.FSM().State().Running()) > 0
		})
		sleepRand(rng, 0, 2*time.Second)
		victim := c.faultVictim(rng)
		kind := rng.IntN(3)
		inflight := 0
		if l := c.leaderOrNil(); l != nil {
			inflight = len(l.FSM().State().Running())
		}
		switch kind {
		case 0:
			logf("fault %d: crash meshd of %s (%d migrations running)", f, HostName(victim), inflight)
			c.Crash(victim)
		case 1:
			logf("fault %d: kill host %s (%d migrations running)", f, HostName(victim), inflight)
			c.Kill(victim)
		default:
			logf("fault %d: partition %s (%d migrations running)", f, HostName(victim), inflight)
			c.Partition(victim)
		}
		sleepRand(rng, 500*time.Millisecond, 3*time.Second)
		if kind == 2 {
			c.Heal(victim)
		} else {
			c.Restart(victim)
		}
		healed := time.Now()
		v := c.truthViolations(faultSettleBound, vms)
		logf("fault %d healed; checker: %d violations; the mesh agreed with its hypervisors %s after the heal",
			f, len(v), time.Since(healed).Round(time.Millisecond))
		violations = append(violations, v...)
	}
	return violations
}

// faultVictim picks a host: the source or destination of a running
// migration, the leader, or any host, with equal odds.
func (c *Cluster) faultVictim(rng *rand.Rand) int {
	var cands []string
	if l := c.leaderOrNil(); l != nil {
		for _, m := range l.FSM().State().Running() {
			cands = append(cands, m.Source, m.Dest)
		}
		if rng.IntN(3) == 0 {
			return c.indexOf(l.Name())
		}
	}
	if len(cands) > 0 && rng.IntN(2) == 0 {
		return c.indexOf(cands[rng.IntN(len(cands))])
	}
	return rng.IntN(len(c.cfgs))
}

// sleepRand pauses the schedule for a random time in [lo, hi): the fault
// lands wherever the migrations stand then. It is the schedule's input,
// not a wait for a condition.
func sleepRand(rng *rand.Rand, lo, hi time.Duration) {
	<-time.After(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
}
