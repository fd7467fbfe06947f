// Per-VM settings an operator gives (meshctl vm set): for now whether the
// VM may migrate at all.
//
// They live in the replicated state, not in the domain's libvirt metadata
// as VDSM keeps its own: a setting in the state is written once, through
// Raft, and every replica's placement, drain and check reads the same
// value at the same log index; it survives its host being down (the host
// that would have to be asked is the one a drain or a failure concerns),
// needs no write to a hypervisor, and records who set it in the event
// log. Metadata would be read back only through inventories, late and
// host by host, and a host that is Down could not report it at all.

package fsm

import (
	"fmt"
	"strings"
	"time"
)

// VMSettings are an operator's settings of one VM.
type VMSettings struct {
	// VM is the VM's name when it was set, for display.
	VM string `json:"vm"`
	// Migratable false pins the VM to its host (a licence bound to the
	// host, a workload that must not pause): placement, migrate and drain
	// leave it where it is. Nil (or true) is the default: it may move.
	Migratable *bool `json:"migratable,omitempty"`
	// Policy and BandwidthMiB are the VM's own convergence policy and
	// bandwidth cap: a migration asked without them (a drain's, a
	// balancing move, meshctl migrate without --policy/--bandwidth) takes
	// these instead of the cluster's. Kept in the replicated state, not in
	// the domain's libvirt metadata as VDSM keeps its own: the leader
	// queues drains and balancing moves itself, for hosts that may be
	// unreachable, and every replica must queue the same migration.
	Policy       string `json:"policy,omitempty"`
	BandwidthMiB uint64 `json:"bandwidth_mib,omitempty"`
	// By and Since record who set them and when.
	By    string    `json:"by,omitempty"`
	Since time.Time `json:"since"`
}

// MigrationSettings resolves the policy and bandwidth cap of a migration
// of the VM with key k in cluster: the migration's own (policy, bw), else
// the VM's, else the cluster's policy (a cap of 0 means the cluster's in
// fixed mode). Enqueue records them; a dry run predicts with them.
func (s *State) MigrationSettings(k, cluster, policy string, bw uint64) (string, uint64) {
	if vs := s.VMSettings[k]; vs != nil {
		if policy == "" {
			policy = vs.Policy
		}
		if bw == 0 {
			bw = vs.BandwidthMiB
		}
	}
	if policy == "" {
		policy = s.Cluster(cluster).Policy
	}
	return policy, bw
}

func (v *VMSettings) clone() *VMSettings {
	c := *v
	if v.Migratable != nil {
		b := *v.Migratable
		c.Migratable = &b
	}
	return &c
}

// empty reports whether the settings say nothing beyond the defaults.
func (v *VMSettings) empty() bool { return !v.pinned() && v.Policy == "" && v.BandwidthMiB == 0 }

// pinned reports whether an operator set the VM not migratable.
func (v *VMSettings) pinned() bool { return v.Migratable != nil && !*v.Migratable }

// SetVM changes an operator's settings of one VM. A nil field leaves it as
// it is. Migratable true removes the pin (host devices still keep the VM
// in place: the setting cannot make a passthrough device move); Policy ""
// and BandwidthMiB 0 go back to the cluster's.
type SetVM struct {
	// VM is the VM's UUID or a name that one VM has.
	VM           string    `json:"vm"`
	Migratable   *bool     `json:"migratable,omitempty"`
	Policy       *string   `json:"policy,omitempty"`
	BandwidthMiB *uint64   `json:"bandwidth_mib,omitempty"`
	At           time.Time `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

func (x SetVM) validate() error {
	var c checks
	c.actor(x.Actor)
	c.name("vm", x.VM)
	c.time("time", x.At)
	if x.Migratable == nil && x.Policy == nil && x.BandwidthMiB == nil {
		c.fail("no setting given (migratable, policy, bandwidth)")
	}
	if x.Policy != nil && *x.Policy != "" {
		c.token("policy", *x.Policy)
	}
	if x.BandwidthMiB != nil {
		c.atMost("bandwidth MiB", *x.BandwidthMiB, MaxBandwidthMiB)
	}
	return c.err
}

func applySetVM(s *State, data []byte) (any, error) {
	var c SetVM
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	k, vm, err := s.ResolveVM(c.VM)
	if err != nil {
		return nil, rejectf("set vm %q: %v", c.VM, err)
	}
	s.tick(c.At)
	cur := s.VMSettings[k]
	next := &VMSettings{VM: vm.Name, By: c.Actor, Since: c.At}
	if cur != nil {
		cc := cur.clone()
		next.Migratable, next.Policy, next.BandwidthMiB = cc.Migratable, cc.Policy, cc.BandwidthMiB
	}
	if c.Migratable != nil {
		b := *c.Migratable
		next.Migratable = &b
	}
	if c.Policy != nil {
		next.Policy = *c.Policy
	}
	if c.BandwidthMiB != nil {
		next.BandwidthMiB = *c.BandwidthMiB
	}
	if next.empty() {
		delete(s.VMSettings, k)
	} else {
		s.VMSettings[k] = next
	}
	what := "migratable"
	if next.pinned() {
		what = "not migratable: pinned to its host"
	}
	policy, bw := "the cluster's", "the cluster's"
	if next.Policy != "" {
		policy = next.Policy
	}
	if next.BandwidthMiB > 0 {
		bw = fmt.Sprintf("%d MiB/s", next.BandwidthMiB)
	}
	what += fmt.Sprintf("; policy %s, bandwidth %s", policy, bw)
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventVMSettings, Hosts: []string{vm.Host}, VM: vm.Name, VMUUID: vm.UUID,
		Message: fmt.Sprintf("vm %s set %s", vm.Name, what)})
	return nil, nil
}

// NotMigratable says why the VM with key k cannot migrate at all (on no
// host, whatever the checks of a destination say), or "" when it can:
// passthrough host devices, or an operator's pin (SetVM).
func (s *State) NotMigratable(k string) string {
	vm := s.VMs[k]
	if vm == nil {
		return ""
	}
	var why []string
	if len(vm.HostDevices) > 0 {
		why = append(why, fmt.Sprintf("vm %s has passthrough host device %s, which cannot migrate live",
			vm.Name, strings.Join(vm.HostDevices, ", ")))
	}
	if vs := s.VMSettings[k]; vs != nil && vs.pinned() {
		by := ""
		if vs.By != "" {
			by = " by " + vs.By
		}
		why = append(why, fmt.Sprintf("vm %s was set not migratable%s at %s (meshctl vm set %s --migratable=true undoes it)",
			vm.Name, by, vs.Since.UTC().Format(time.RFC3339), vm.Name))
	}
	return strings.Join(why, "; ")
}
