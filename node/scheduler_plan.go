package node

import (
	"container/heap"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// planIndex is the Raft index the plan's commands are applied at: above
// any real index, so no inventory is taken for newer than them.
const planIndex = 1 << 62

// PlanDrain's plan (api.DrainPlan) is what draining a host would do,
// computed by running the leader's own scheduler (migrate.Schedule) and
// the FSM's commands on a private copy of the state: the drain's
// StartDrain, then grants as the scheduler decides them and each
// migration's end after its predicted time, until nothing is left to move.
// So the plan follows the same checks, affinity rules, slots and bandwidth
// caps as the real drain; it differs from it where the world does (a guest
// dirtying memory faster than predicted, a failure, a VM that appears).
//
// A move's predicted time is migrate.Predict's pre-copy model (the
// one the auto policy uses): the VM's memory at the bandwidth granted to
// it, then the passes its dirty rate makes, until the rest fits the
// switch-over. The dirty rate is the last one sampled for that VM by a
// migration the state still records (its source measured it before or
// during the job); a VM never migrated is predicted at one pass. A
// migration of the drain already running is planned from its last
// sample: what remains at the rate it goes. The total is when the last
// move ends; the limit is
// every VM's memory over the migration network's capacity
// (Cluster.MigrationNetMiB), the time no schedule can beat. The plan is
// filled in the API's own type: meshd has no twin of it to keep in sync.

// running is a planned migration in flight, ending at end.
type planned struct {
	id   string
	end  float64
	move int
}

type byEnd []planned

func (h byEnd) Len() int { return len(h) }
func (h byEnd) Less(i, j int) bool {
	if h[i].end != h[j].end {
		return h[i].end < h[j].end
	}
	return h[i].id < h[j].id
}
func (h byEnd) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *byEnd) Push(x any)   { *h = append(*h, x.(planned)) }
func (h *byEnd) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// PlanDrain predicts draining host from st, which it does not change. A
// drain already running is planned from where it is; otherwise the
// drain's start is applied first, and its refusal (an unknown host, one
// in Maintenance) is the error.
func PlanDrain(st *fsm.State, host string, at time.Time) (api.DrainPlan, error) {
	return planDrain(context.Background(), st, host, at)
}

// planDrain is PlanDrain that gives up with ctx's error: a plan of a
// large host in a large cluster runs the scheduler once per move, seconds
// of CPU, which a drain's start must not wait for.
func planDrain(ctx context.Context, st *fsm.State, host string, at time.Time) (api.DrainPlan, error) {
	work := st.Clone()
	index := uint64(planIndex)
	apply := func(t fsm.CommandType, payload any) (any, error) {
		data, err := fsm.Encode(t, payload)
		if err != nil {
			return nil, err
		}
		index++
		return fsm.ApplyTo(work, index, data)
	}
	if d := work.Drains[host]; d == nil || d.State != fsm.DrainActive {
		if _, err := apply(fsm.CmdStartDrain, fsm.StartDrain{Host: host, Reason: "plan", At: at, Actor: "plan"}); err != nil {
			return api.DrainPlan{}, fmt.Errorf("plan drain of %s: %w", host, err)
		}
	}
	h := work.Hosts[host]
	cl := work.Cluster(h.Cluster)
	plan := api.DrainPlan{Host: host, NetMiB: cl.MigrationNetMiB, Moves: []api.PlannedMove{}, Unmovable: []api.PlannedRefusal{}}
	var inflight byEnd
	now := 0.0
	var movedMiB uint64
	hist := vmHistories(work)
	// Running migrations hold slots until they end: they end in the
	// plan when their rest is sent. Those of the drained host are moves.
	for _, m := range work.Running() {
		mv := runningMove(work, m, hist[work.MigrationVMKey(m)], cl)
		heap.Push(&inflight, planned{id: m.ID, end: mv.Seconds})
		if m.Source == host {
			plan.Moves = append(plan.Moves, mv)
			movedMiB += mv.MemoryMiB
		}
	}
	for range 100000 { // bounded: every pass grants, fails or ends one migration at least
		if err := ctx.Err(); err != nil {
			return plan, fmt.Errorf("plan drain of %s: %w", host, err)
		}
		for _, d := range migrate.Schedule(work) {
			m := work.Migrations[d.Migration]
			if d.Fail != "" {
				if _, err := apply(fsm.CmdFinish, fsm.Finish{ID: d.Migration, Attempt: d.Attempt, State: fsm.MigFailed,
					Reason: d.Fail, At: at, Actor: "plan"}); err != nil {
					return plan, fmt.Errorf("plan drain of %s: %w", host, err)
				}
				continue
			}
			if _, err := apply(fsm.CmdGrant, fsm.Grant{ID: d.Migration, Dest: d.Dest, BandwidthMiB: d.BandwidthMiB,
				Reason: d.Reason, At: at, Reshare: d.Reshare}); err != nil {
				return plan, fmt.Errorf("plan drain of %s: %w", host, err)
			}
			vm := work.VMOf(m)
			mv := api.PlannedMove{VM: m.VM, VMUUID: m.VMUUID, Dest: d.Dest, Reason: d.Reason, BandwidthMiB: d.BandwidthMiB,
				StartSeconds: now}
			if vm != nil {
				mv.MemoryMiB = vm.MemoryMiB
			}
			h := hist[work.MigrationVMKey(m)]
			mv.DirtyMiB = float64(h.dirtyBps) / (1 << 20)
			mv.Seconds = h.predict(mv.MemoryMiB, d.BandwidthMiB, cl)
			if m.Source == host {
				plan.Moves = append(plan.Moves, mv)
				movedMiB += mv.MemoryMiB
			}
			heap.Push(&inflight, planned{id: d.Migration, end: now + mv.Seconds})
		}
		if inflight.Len() == 0 {
			break
		}
		next := heap.Pop(&inflight).(planned)
		now = next.end
		m := work.Migrations[next.id]
		vm := work.VMOf(m)
		if _, err := apply(fsm.CmdFinish, fsm.Finish{ID: next.id, Attempt: m.Attempt, State: fsm.MigSucceeded,
			At: at, Actor: "plan"}); err != nil {
			return plan, fmt.Errorf("plan drain of %s: %w", host, err)
		}
		// The hypervisors' free memory follows the VM, as their next
		// facts would say.
		if vm != nil {
			if src := work.Hosts[m.Source]; src != nil {
				src.MemFreeMiB += vm.MemoryMiB
			}
			if dst := work.Hosts[m.Dest]; dst != nil {
				dst.MemFreeMiB -= min(dst.MemFreeMiB, vm.MemoryMiB)
			}
		}
	}
	for _, mv := range plan.Moves {
		plan.TotalSeconds = max(plan.TotalSeconds, mv.StartSeconds+mv.Seconds)
	}
	if cl.MigrationNetMiB > 0 {
		plan.LimitSeconds = float64(movedMiB) / float64(cl.MigrationNetMiB)
	}
	if d := work.Drains[host]; d != nil {
		for vm, why := range d.Unmovable {
			plan.Unmovable = append(plan.Unmovable, api.PlannedRefusal{VM: vm, Reason: why})
		}
	}
	// Migrations of the drain the scheduler never granted nor failed
	// (waiting on a slot that never freed in the plan).
	for _, m := range work.Queued() {
		if m.Source == host {
			plan.Unmovable = append(plan.Unmovable, api.PlannedRefusal{VM: m.VM,
				Reason: "would wait: the scheduler found it no slot once every other move ended"})
		}
	}
	sort.Slice(plan.Unmovable, func(i, j int) bool { return plan.Unmovable[i].VM < plan.Unmovable[j].VM })
	sort.SliceStable(plan.Moves, func(i, j int) bool { return plan.Moves[i].StartSeconds < plan.Moves[j].StartSeconds })
	return plan, nil
}

// planDowntime is the switch-over the plan assumes: QEMU's default
// allowed downtime, where the policies start (minimal-downtime steps it
// up from 100 ms; the difference is a fraction of one pass).
const planDowntime = 300 * time.Millisecond

// moveSeconds predicts one move with migrate.Predict: memory at the
// granted bandwidth, then the passes dirtyBps makes (0: unknown, one
// pass); an unlimited grant (0) gets the migration network's capacity.
func moveSeconds(memMiB, bwMiB, dirtyBps uint64, cl fsm.Cluster) float64 {
	if bwMiB == 0 {
		bwMiB = cl.MigrationNetMiB
	}
	if bwMiB == 0 {
		return 0
	}
	p := migrate.Predict(memMiB<<20, memMiB<<20, dirtyBps, bwMiB<<20, planDowntime, dirtyBps > 0)
	return float64(p.TotalMs) / 1000
}

// vmHistory is what the state's recorded migrations of one VM say
// about its next one: the dirty rate its latest sampled migration
// measured (the source's sample before the job, else the job's last
// progress report), and how long its latest successful migration took
// at what bandwidth.
type vmHistory struct {
	dirtyBps uint64
	dirtyAt  time.Time
	took     float64 // seconds; 0: never migrated successfully
	tookMiB  uint64  // the bandwidth it had
	tookAt   time.Time
}

// predict is a move's time: the VM's last successful migration scaled
// to the new bandwidth when there is one (the guest's memory in use and
// its habits are in that figure, the model knows neither), else the
// pre-copy model from its memory and last sampled dirty rate.
func (h vmHistory) predict(memMiB, bwMiB uint64, cl fsm.Cluster) float64 {
	if bwMiB == 0 {
		bwMiB = cl.MigrationNetMiB
	}
	if h.took > 0 && h.tookMiB > 0 && bwMiB > 0 {
		return h.took * float64(h.tookMiB) / float64(bwMiB)
	}
	return moveSeconds(memMiB, bwMiB, h.dirtyBps, cl)
}

// vmHistories reads every VM's history from the migrations the state
// still holds (the retention keeps a week).
func vmHistories(st *fsm.State) map[string]vmHistory {
	out := map[string]vmHistory{}
	for _, m := range st.Migrations {
		k := st.MigrationVMKey(m)
		h := out[k]
		rate := m.Progress.DirtyRateBps
		if pr := m.Progress.Prediction; pr != nil && pr.Sampled && rate == 0 {
			rate = pr.DirtyRateBps
		}
		when := m.EndedAt
		if when.IsZero() {
			when = m.StartedAt
		}
		if rate > 0 && (h.dirtyAt.IsZero() || when.After(h.dirtyAt)) {
			h.dirtyBps, h.dirtyAt = rate, when
		}
		if m.State == fsm.MigSucceeded && !m.StartedAt.IsZero() && m.EndedAt.After(m.StartedAt) && m.GrantedMiB > 0 &&
			m.Progress.PostCopyAtMs == 0 && m.Progress.SuspendedAtMs == 0 && m.EndedAt.After(h.tookAt) {
			h.took, h.tookMiB, h.tookAt = m.EndedAt.Sub(m.StartedAt).Seconds(), m.GrantedMiB, m.EndedAt
		}
		out[k] = h
	}
	return out
}

// runningMove is a running migration as a move of the plan, started at
// 0: what remains (its last sample) at the speed it goes (its last
// sample, else its grant); one that reported nothing yet is predicted
// whole, as a move that starts now.
func runningMove(st *fsm.State, m *fsm.Migration, h vmHistory, cl fsm.Cluster) api.PlannedMove {
	mv := api.PlannedMove{VM: m.VM, VMUUID: m.VMUUID, Dest: m.Dest, Reason: "running: " + m.PlacementReason,
		BandwidthMiB: m.GrantedMiB, Running: true}
	if vm := st.VMOf(m); vm != nil {
		mv.MemoryMiB = vm.MemoryMiB
	}
	pr := m.Progress
	mv.DirtyMiB = float64(pr.DirtyRateBps) / (1 << 20)
	if pr.TotalBytes == 0 {
		mv.DirtyMiB = float64(h.dirtyBps) / (1 << 20)
		mv.Seconds = h.predict(mv.MemoryMiB, m.GrantedMiB, cl)
		return mv
	}
	speed := pr.MiBps
	if speed <= 0 {
		speed = float64(m.GrantedMiB)
	}
	if speed <= 0 {
		speed = float64(cl.MigrationNetMiB)
	}
	if speed > 0 {
		mv.Seconds = float64(pr.RemainingBytes) / (1 << 20) / speed
	}
	return mv
}
