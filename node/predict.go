package node

import (
	"context"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// dirtyRateSample is how long the source measures an auto migration's
// dirty rate before it starts: libvirt counts in whole seconds, and one
// second is what one migration pays for its prediction.
const dirtyRateSample = time.Second

// predict samples the guest's dirty rate on this host (the source) and
// predicts the migration at its granted bandwidth; an auto migration runs
// the policy the prediction picks (migrate.AutoPolicy). Only auto samples:
// the others would pay the sampling second for nothing they act on. A
// hypervisor that cannot sample leaves the prediction unsampled (one pass
// at the bandwidth) and auto at its default, auto-converge.
func (n *Node) predict(ctx context.Context, a *attempt) {
	if a.pol.Name != migrate.PolicyAuto {
		return
	}
	var r migrate.DirtyRate
	sampled := false
	if s, ok := n.cfg.Hypervisor.(migrate.DirtyRateSampler); ok {
		var err error
		if r, err = s.SampleDirtyRate(ctx, a.ref, dirtyRateSample); err != nil {
			a.log.Warn("sample dirty rate: predicting without it", "err", err)
		} else {
			sampled = true
		}
	}
	var h migrate.History
	n.fsm.Read(func(s *fsm.State) { h = lastMigration(s, fsm.VMKey(a.vm.UUID, a.vm.Name)) })
	pred := migrate.PredictAuto(a.vm.MemoryMiB<<20, r, h, a.m.GrantedMiB<<20, sampled)
	a.pred = &pred
	a.pol = migrate.AutoPolicy(pred)
	a.params = a.pol.Params(a.params)
	a.log.Info("migration predicted", "choice", pred.Choice, "converges", pred.Converges, "predicted", time.Duration(pred.TotalMs)*time.Millisecond,
		"dirty_mib_s", float64(pred.DirtyRateBps)/(1<<20), "in_use_mib", pred.DataBytes>>20, "in_use_from", pred.DataFrom,
		"setup", time.Duration(pred.SetupMs)*time.Millisecond, "bandwidth_mib", a.m.GrantedMiB, "sampled", sampled)
}

// lastMigration is what the latest successful migration of the VM with
// key k measured (its first pass and setup), for its next prediction.
func lastMigration(st *fsm.State, k string) migrate.History {
	var h migrate.History
	var at time.Time
	for _, m := range st.Migrations {
		if m.State != fsm.MigSucceeded || m.Progress.FirstPassBytes == 0 || !m.EndedAt.After(at) || st.MigrationVMKey(m) != k {
			continue
		}
		at = m.EndedAt
		h = migrate.History{FirstPassBytes: m.Progress.FirstPassBytes, DirtySetBytes: m.Progress.DirtySetBytes,
			Setup: time.Duration(m.Progress.FirstByteMs) * time.Millisecond}
	}
	return h
}
