package testcluster

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The randomized fault matrix (issue 10). A schedule, drawn from a seed,
// runs a 5-host mesh with 30 sim VMs, drains one host and asks for random
// migrations, and injects faults at random times, one of:
//
//   - crash: a meshd crashed and restarted (its hypervisor's jobs run on);
//   - kill: a whole host killed and brought back (its streams break, its
//     hypervisor stops answering);
//   - partition: a host cut off gossip and Raft, then healed;
//   - quorum loss: a majority of the voters partitioned or crashed for a
//     few seconds while migrations run and end on the hypervisors (no
//     Finish can commit), then healed or restarted;
//   - lost gossip: a host's gossip dropped while its Raft flows (the
//     others' failure detector declares it dead though it replicates);
//   - lost Raft: a host's Raft cut while its gossip flows.
//
// After each fault heals the checker runs (checker_test.go) and every
// violation is counted; through the whole schedule a sampler checks the
// slot limits in the state and on the hypervisors (faults_slots_test.go).
//
// `make unit` runs the fixed seeds below; `make soak SEEDS=N` runs N
// schedules (FAULT_SCHEDULES=N) and ends with "N schedules, V violations".
// A failing schedule prints the command that replays it; FAULT_LOG=1 adds
// meshd's log on stderr.

// faultSeeds are the schedules every `make unit` (and CI) runs, a few at
// a time (faultParallel): the schedules mostly wait on simulated
// migrations, so they share the machine's cores well.
var faultSeeds = seedRange(1, 30)

// faultParallel is how many schedules run at once unless FAULT_PARALLEL
// says otherwise.
const faultParallel = 4

// faultSettleBound is the checker's bound: after a fault healed, the mesh
// agrees with its hypervisors within it (the Fast settle bound plus a
// drain's migrations at the test's time scale).
const faultSettleBound = 60 * time.Second

// The fault kinds a schedule draws from.
const (
	faultCrash = iota
	faultKill
	faultPartition
	faultQuorum
	faultGossip
	faultRaft
	faultKinds
)

func seedRange(first, n int) []uint64 {
	var out []uint64
	for i := 0; i < n; i++ {
		out = append(out, uint64(first+i))
	}
	return out
}

// envInt reads a positive integer setting, def when unset.
func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive count", name, s)
	}
	return v
}

// TestFaultSchedules runs the fault schedules: the fixed seeds, or
// FAULT_SEED=s (one, to replay), or FAULT_SCHEDULES=N (seeds
// FAULT_FIRST.. , default 1, for make soak); FAULT_PARALLEL of them at a
// time.
func TestFaultSchedules(t *testing.T) {
	seeds := faultSeeds
	if s := os.Getenv("FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: %v", s, err)
		}
		seeds = []uint64{v}
	} else if os.Getenv("FAULT_SCHEDULES") != "" {
		seeds = seedRange(envInt(t, "FAULT_FIRST", 1), envInt(t, "FAULT_SCHEDULES", 1))
	}
	par := envInt(t, "FAULT_PARALLEL", faultParallel)
	start := time.Now()
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, par)
	for _, seed := range seeds {
		sem <- struct{}{}
		wg.Add(1)
		// Subtests may run from several goroutines at once (testing.T.Run).
		go func() {
			defer func() { <-sem; wg.Done() }()
			var v []string
			ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				v = runFaultSchedule(t, seed)
				for _, line := range v {
					t.Errorf("violation: %s", line)
				}
			})
			if !ok && len(v) == 0 {
				// the schedule itself failed (a host that would not
				// start, a leader never elected): counted, not hidden
				v = []string{fmt.Sprintf("seed %d: the schedule failed (see its log)", seed)}
				fmt.Printf("violation: %s\n", v[0])
			}
			if len(v) > 0 {
				fmt.Printf("replay: FAULT_SEED=%d go test ./testcluster/ -run TestFaultSchedules -count=1 -v\n", seed)
			}
			mu.Lock()
			total += len(v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("%d schedules, %d at a time, in %s", len(seeds), par, time.Since(start).Round(time.Second))
	fmt.Printf("%d schedules, %d violations\n", len(seeds), total)
	fmt.Printf("raft pipelines that refused a send after a failed answer: %d (before 8d5c64e each was half of a hung replication)\n",
		pipelineRefusals.Load())
}

// pipelineRefusals counts, over the schedules, the Raft pipelines that
// refused an append because an earlier answer failed (node/transport.go):
// Raft sent on after its decoder had left, which hung the leader's
// replication to that follower when it sent once more.
var pipelineRefusals atomic.Int64

// runFaultSchedule runs one schedule and returns the checker's violations.
func runFaultSchedule(t *testing.T, seed uint64) (violations []string) {
	rng := rand.New(rand.NewPCG(seed, 0x7e57))
	// At this time scale a 1 GiB VM takes some 2.5 s at the default 52
	// MiB/s: the faults land in running migrations, not between them.
	trace := newFaultTrace()
	opts := Options{Hosts: 5, VMsPerHost: 6, VMMemMiB: 1024, TimeScale: 8, Logger: slog.New(trace.handler()), WrapHypervisor: trace.wrap}
	if os.Getenv("FAULT_LOG") != "" { // meshd's log on stderr, to read a replay
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c := New(t, opts)
	trace.mu.Lock()
	trace.c = c
	trace.mu.Unlock()
	defer func() {
		pipelineRefusals.Add(int64(len(trace.logs.Lines(slog.LevelDebug, "raft pipeline: an append after a failed answer refused"))))
		for _, v := range violations {
			if lines := trace.explain(v); len(lines) > 0 {
				t.Logf("trace of %q:\n\t%s", v, strings.Join(lines, "\n\t"))
			}
			if strings.HasPrefix(v, "replicas differ") {
				t.Logf("Raft replication goroutines of this process:\n%s", raftReplicationStacks())
			}
		}
	}()
	c.waitVMs(30)
	vms := c.vmNames()
	logf := func(format string, args ...any) {
		t.Logf("seed %d: "+format, append([]any{seed}, args...)...)
		trace.note(fmt.Sprintf(format, args...))
	}
	slots := c.sampleSlots(100*time.Millisecond, vms)
	defer slots.Stop()

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
		kind := rng.IntN(faultKinds)
		inflight := 0
		if l := c.leaderOrNil(); l != nil {
			inflight = len(l.FSM().State().Running())
		}
		heal := c.injectFault(rng, kind, victim, func(what string) {
			logf("fault %d: %s (%d migrations running)", f, what, inflight)
		})
		if kind == faultQuorum {
			// long enough for running migrations to end on the
			// hypervisors while no Finish can commit
			sleepRand(rng, 3*time.Second, 6*time.Second)
		} else {
			sleepRand(rng, 500*time.Millisecond, 3*time.Second)
		}
		heal()
		healed := time.Now()
		v := c.truthViolations(faultSettleBound, vms)
		logf("fault %d healed; checker: %d violations; the mesh agreed with its hypervisors %s after the heal",
			f, len(v), time.Since(healed).Round(time.Millisecond))
		for _, line := range append(v, slots.take()...) {
			// one finding once, though it stands through later faults
			if !slices.Contains(violations, line) {
				violations = append(violations, line)
			}
		}
	}
	return violations
}

// injectFault starts a fault of the kind on victim (and, for a quorum
// loss, on enough other voters to make a majority), says what it did, and
// returns what ends it.
func (c *Cluster) injectFault(rng *rand.Rand, kind, victim int, say func(string)) (heal func()) {
	name := HostName(victim)
	switch kind {
	case faultCrash:
		say("crash meshd of " + name)
		c.Crash(victim)
		return func() { c.Restart(victim) }
	case faultKill:
		say("kill host " + name)
		c.Kill(victim)
		return func() { c.Restart(victim) }
	case faultPartition:
		say("partition " + name)
		c.Partition(victim)
		return func() { c.Heal(victim) }
	case faultGossip:
		say("lose the gossip of " + name + " (Raft flows)")
		c.CutGossip(victim)
		return func() { c.Heal(victim) }
	case faultRaft:
		say("cut the Raft of " + name + " (gossip flows)")
		c.CutRaft(victim)
		return func() { c.Heal(victim) }
	}
	// quorum loss: victim and other voters, a majority of them
	voters := c.voters()
	set := []int{victim}
	rng.Shuffle(len(voters), func(i, j int) { voters[i], voters[j] = voters[j], voters[i] })
	for _, v := range voters {
		if len(set) >= len(voters)/2+1 {
			break
		}
		if v != victim {
			set = append(set, v)
		}
	}
	var names []string
	for _, i := range set {
		names = append(names, HostName(i))
	}
	if rng.IntN(2) == 0 {
		say(fmt.Sprintf("quorum loss: crash meshd of %v of %d voters", names, len(voters)))
		for _, i := range set {
			c.Crash(i)
		}
		return func() {
			for _, i := range set {
				c.Restart(i)
			}
		}
	}
	say(fmt.Sprintf("quorum loss: partition %v of %d voters", names, len(voters)))
	for _, i := range set {
		c.Partition(i)
	}
	return func() {
		for _, i := range set {
			c.Heal(i)
		}
	}
}

// voters lists the hosts that are Raft voters in the leader's
// configuration (every host when there is no leader to ask).
func (c *Cluster) voters() []int {
	l := c.leaderOrNil()
	if l == nil {
		return seqInts(len(c.cfgs))
	}
	f := l.Raft().GetConfiguration()
	if f.Error() != nil {
		return seqInts(len(c.cfgs))
	}
	var out []int
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, c.indexOf(string(s.ID)))
		}
	}
	return out
}

func seqInts(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
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
