package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// A dry run (`meshctl migrate --dry-run`) shows every host's checks and,
// for the destination the migration would take (the one asked with --to,
// else placement's choice), the prediction its source would make before
// starting it: the guest's dirty rate sampled on its host now, at the
// bandwidth the scheduler would grant now, with the model an auto
// migration acts on (migrate.PredictAuto). An operator then sees before
// queueing whether pre-copy converges, how long it should take, and what
// auto would pick, instead of finding out by a stall after a minute.

// dryRunSampleTimeout bounds the sample a dry run asks of the VM's host:
// libvirt's one-second calculation, with room for a loaded host.
const dryRunSampleTimeout = 15 * time.Second

// dryRunCandidate is api.Candidate as meshd writes it.
type dryRunCandidate struct {
	migrate.Candidate
	Prediction *dryRunPrediction `json:"prediction,omitempty"`
}

// dryRunPrediction is api.DryRunPrediction as meshd writes it.
type dryRunPrediction struct {
	fsm.Prediction
	Policy     string `json:"policy"`
	GrantedMiB uint64 `json:"granted_mib"`
	Chosen     string `json:"chosen"`
	NotSampled string `json:"not_sampled,omitempty"`
}

// dirtyRateRequest is the body of the host-only POST
// /v1/internal/dirtyrate: the VM whose dirty rate the host it runs on
// samples for another host's dry run.
type dirtyRateRequest struct {
	Name string `json:"name"`
	UUID string `json:"uuid,omitempty"`
}

// dirtyRateAnswer is its answer (migrate.DirtyRate).
type dirtyRateAnswer struct {
	Bps        uint64 `json:"bps"`
	InUseBytes uint64 `json:"in_use_bytes"`
}

// dryRun evaluates every host for the VM with key k and predicts the
// migration on the destination it would take. A prediction that cannot be
// made (no host passes; the VM's host does not answer) leaves the
// candidates without one, or unsampled with the reason.
func (n *Node) dryRun(ctx context.Context, st *fsm.State, k string, req api.MigrateRequest) []dryRunCandidate {
	cands := migrate.DryRun(st, k)
	out := make([]dryRunCandidate, len(cands))
	for i, c := range cands {
		out[i].Candidate = c
	}
	vm, src := st.VMs[k], (*fsm.Host)(nil)
	if vm != nil {
		src = st.Hosts[vm.Host]
	}
	if src == nil {
		return out
	}
	dest, chosen := req.To, "asked"
	if dest == "" {
		p, err := migrate.Place(st, k, nil)
		if err != nil {
			return out
		}
		dest, chosen = p.Host, "placement"
	}
	policy, bw := st.MigrationSettings(k, src.Cluster, req.Policy, req.BandwidthMiB)
	granted := migrate.GrantNow(st, src.Cluster, bw)
	r, err := n.sampleDirtyRate(ctx, st, vm)
	pr := &dryRunPrediction{Policy: policy, GrantedMiB: granted, Chosen: chosen,
		Prediction: migrate.PredictAuto(vm.MemoryMiB<<20, r, lastMigration(st, k), granted<<20, err == nil)}
	if err != nil {
		pr.NotSampled = err.Error()
	}
	for i := range out {
		if out[i].Host == dest {
			out[i].Prediction = pr
		}
	}
	return out
}

// sampleDirtyRate samples vm's dirty rate on the host it runs on: here
// directly, elsewhere over that host's host port.
func (n *Node) sampleDirtyRate(ctx context.Context, st *fsm.State, vm *fsm.VM) (migrate.DirtyRate, error) {
	ctx, cancel := context.WithTimeout(ctx, dryRunSampleTimeout)
	defer cancel()
	if vm.Host == n.cfg.Name {
		return n.sampleLocal(ctx, migrate.DomainRef{Name: vm.Name, UUID: vm.UUID})
	}
	h := st.Hosts[vm.Host]
	if h == nil || h.RaftAddr == "" {
		return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s: its host %s has no known host port", vm.Name, vm.Host)
	}
	cl, err := n.peers.client(h.Name, h.RaftAddr)
	if err != nil {
		return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s: %w", vm.Name, err)
	}
	var s dirtyRateAnswer
	if err := cl.Do(ctx, http.MethodPost, "/v1/internal/dirtyrate", dirtyRateRequest{Name: vm.Name, UUID: vm.UUID}, &s); err != nil {
		return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s on %s: %w", vm.Name, vm.Host, err)
	}
	return migrate.DirtyRate{Bps: s.Bps, InUseBytes: s.InUseBytes}, nil
}

// errNoSampler: this host's hypervisor cannot measure a dirty rate.
var errNoSampler = errors.New("the hypervisor cannot sample dirty rates")

// sampleLocal samples a guest of this host for the dirty-rate sample's
// usual period (dirtyRateSample).
func (n *Node) sampleLocal(ctx context.Context, ref migrate.DomainRef) (migrate.DirtyRate, error) {
	s, ok := n.cfg.Hypervisor.(migrate.DirtyRateSampler)
	if !ok {
		return migrate.DirtyRate{}, fmt.Errorf("sample dirty rate of vm %s on %s: %w", ref, n.cfg.Name, errNoSampler)
	}
	return s.SampleDirtyRate(ctx, ref, dirtyRateSample)
}

// handleInternalDirtyRate samples one guest of this host for another
// host's dry run.
func (n *Node) handleInternalDirtyRate(w http.ResponseWriter, r *http.Request) {
	var req dirtyRateRequest
	if err := decodeBody(r, "sample dirty rate", &req); err != nil {
		writeErr(w, err)
		return
	}
	if req.Name == "" && req.UUID == "" {
		writeErr(w, badRequest("sample dirty rate: field \"name\" or \"uuid\" is required"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dryRunSampleTimeout)
	defer cancel()
	s, err := n.sampleLocal(ctx, migrate.DomainRef{Name: req.Name, UUID: req.UUID})
	switch {
	case errors.Is(err, migrate.ErrNoDomain):
		writeErr(w, notFound("%v", err))
	case err != nil:
		writeErr(w, err)
	default:
		writeJSON(w, http.StatusOK, dirtyRateAnswer{Bps: s.Bps, InUseBytes: s.InUseBytes})
	}
}
