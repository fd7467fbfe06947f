// Affinity rules: where operators want VMs to run, kept in the replicated
// state so that every replica's placement, checks and drains obey the
// same rules at the same log index.
//
//	vm-together  the VMs run on one host (positive VM–VM affinity)
//	vm-apart     no two of the VMs run on one host (negative)
//	host-must    the VMs run on one of the hosts
//	host-prefer  the same, as a wish (soft unless created hard)
//	host-avoid   the VMs do not run on any of the hosts
//
// A hard rule is a prerequisite check ("affinity"): a move that breaks it
// is refused, naming the rule. A soft rule weighs placement: a host that
// breaks it ranks below every host that does not, but still takes the VM
// when no other can.

package fsm

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Affinity rule kinds.
const (
	AffinityTogether   = "vm-together"
	AffinityApart      = "vm-apart"
	AffinityHostMust   = "host-must"
	AffinityHostPrefer = "host-prefer"
	AffinityHostAvoid  = "host-avoid"
)

// AffinityKinds lists the kinds in the order they are documented.
var AffinityKinds = []string{AffinityTogether, AffinityApart, AffinityHostMust, AffinityHostPrefer, AffinityHostAvoid}

// MaxAffinityRules bounds the rules of a mesh: each move checks them all.
const MaxAffinityRules = 1000

// AffinityRule is one rule as stored.
type AffinityRule struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Hard bool   `json:"hard"`
	// VMs are the keys (UUIDs) of the VMs the rule binds; VMNames their
	// names when the rule was made, for display.
	VMs     []string `json:"vms"`
	VMNames []string `json:"vm_names,omitempty"`
	// Hosts are the hosts of a host-* rule.
	Hosts []string  `json:"hosts,omitempty"`
	By    string    `json:"by,omitempty"`
	Since time.Time `json:"since"`
}

func (r *AffinityRule) clone() *AffinityRule {
	c := *r
	c.VMs = slices.Clone(r.VMs)
	c.VMNames = slices.Clone(r.VMNames)
	c.Hosts = slices.Clone(r.Hosts)
	return &c
}

// hostKind reports whether the rule binds VMs to hosts.
func (r *AffinityRule) hostKind() bool { return strings.HasPrefix(r.Kind, "host-") }

// Strength is "hard" or "soft".
func (r *AffinityRule) Strength() string {
	if r.Hard {
		return "hard"
	}
	return "soft"
}

// CreateAffinity adds a rule. VMs are UUIDs or names one VM has; Apply
// stores their keys.
type CreateAffinity struct {
	Name  string    `json:"name"`
	Kind  string    `json:"kind"`
	Hard  bool      `json:"hard"`
	VMs   []string  `json:"vms"`
	Hosts []string  `json:"hosts,omitempty"`
	At    time.Time `json:"at"`
	// Actor is who asked: "token:NAME", "host NAME" (a host's own
	// writes), "anonymous"; recorded for the audit trail.
	Actor string `json:"actor,omitempty"`
}

// DeleteAffinity removes a rule.
type DeleteAffinity struct {
	Name  string    `json:"name"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor,omitempty"`
}

func (x CreateAffinity) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("rule name", x.Name)
	c.time("time", x.At)
	if !slices.Contains(AffinityKinds, x.Kind) {
		c.fail("kind %q is not one of %s", x.Kind, strings.Join(AffinityKinds, ", "))
	}
	c.listLen("vms", len(x.VMs), MaxList)
	for _, v := range x.VMs {
		c.name("vm", v)
	}
	c.listLen("hosts", len(x.Hosts), MaxList)
	for _, h := range x.Hosts {
		c.host("host", h)
	}
	host := strings.HasPrefix(x.Kind, "host-")
	switch {
	case host && (len(x.VMs) < 1 || len(x.Hosts) < 1):
		c.fail("a %s rule names at least one VM and one host", x.Kind)
	case !host && len(x.VMs) < 2:
		c.fail("a %s rule names at least two VMs", x.Kind)
	case !host && len(x.Hosts) > 0:
		c.fail("a %s rule names no hosts", x.Kind)
	}
	return c.err
}

func (x DeleteAffinity) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("rule name", x.Name)
	c.time("time", x.At)
	return c.err
}

func applyCreateAffinity(s *State, data []byte) (any, error) {
	var c CreateAffinity
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if _, ok := s.Affinity[c.Name]; ok {
		return nil, rejectf("affinity rule %q exists", c.Name)
	}
	if len(s.Affinity) >= MaxAffinityRules {
		return nil, rejectf("affinity rule %q: the mesh has %d rules, the most it keeps", c.Name, MaxAffinityRules)
	}
	r := &AffinityRule{Name: c.Name, Kind: c.Kind, Hard: c.Hard, By: c.Actor, Since: c.At, Hosts: slices.Clone(c.Hosts)}
	for _, ref := range c.VMs {
		k, vm, err := s.ResolveVM(ref)
		if err != nil {
			return nil, rejectf("affinity rule %q: %v", c.Name, err)
		}
		if slices.Contains(r.VMs, k) {
			return nil, rejectf("affinity rule %q: vm %s named twice", c.Name, vm.Name)
		}
		r.VMs = append(r.VMs, k)
		r.VMNames = append(r.VMNames, vm.Name)
	}
	for _, h := range c.Hosts {
		if s.Hosts[h] == nil {
			return nil, rejectf("affinity rule %q: no such host %q", c.Name, h)
		}
	}
	s.tick(c.At)
	s.Affinity[c.Name] = r
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventAffinityCreated, Hosts: slices.Clone(r.Hosts),
		Message: fmt.Sprintf("affinity rule %s created: %s", c.Name, r.Describe())})
	return nil, nil
}

func applyDeleteAffinity(s *State, data []byte) (any, error) {
	var c DeleteAffinity
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	r := s.Affinity[c.Name]
	if r == nil {
		return nil, rejectf("affinity rule %q: no such rule", c.Name)
	}
	s.tick(c.At)
	delete(s.Affinity, c.Name)
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventAffinityDeleted, Hosts: slices.Clone(r.Hosts),
		Message: fmt.Sprintf("affinity rule %s deleted (%s)", c.Name, r.Describe())})
	return nil, nil
}

// Describe says what the rule asks, in words.
func (r *AffinityRule) Describe() string {
	vms := strings.Join(r.VMNames, ", ")
	hosts := strings.Join(r.Hosts, ", ")
	switch r.Kind {
	case AffinityTogether:
		return fmt.Sprintf("%s: vms %s run on one host", r.Strength(), vms)
	case AffinityApart:
		return fmt.Sprintf("%s: vms %s run on different hosts", r.Strength(), vms)
	case AffinityHostMust, AffinityHostPrefer:
		return fmt.Sprintf("%s: vms %s run on %s", r.Strength(), vms, hosts)
	case AffinityHostAvoid:
		return fmt.Sprintf("%s: vms %s do not run on %s", r.Strength(), vms, hosts)
	}
	return r.Kind
}

// Breach is one rule that moving a VM to a host would break.
type Breach struct {
	Rule *AffinityRule
	// Why says what breaks it, naming the VMs and hosts.
	Why string
}

func (b Breach) String() string {
	return fmt.Sprintf("rule %s (%s %s): %s", b.Rule.Name, b.Rule.Strength(), b.Rule.Kind, b.Why)
}

// AffinityBreaches returns the rules, sorted by name, that the VM with
// key k would break by running on dest.
//
// Where another VM of a rule is counts where it is headed when a
// migration with a destination holds it. For vm-together, a VM that
// shares the moving VM's host while that host is being drained (it is
// PreparingForMaintenance) does not count: it leaves too, and follows.
func (s *State) AffinityBreaches(k, dest string) []Breach {
	if len(s.Affinity) == 0 {
		return nil
	}
	vm := s.VMs[k]
	if vm == nil {
		return nil
	}
	var out []Breach
	for _, name := range s.AffinityNames() {
		r := s.Affinity[name]
		if !slices.Contains(r.VMs, k) {
			continue
		}
		if why := s.breach(r, k, vm, dest); why != "" {
			out = append(out, Breach{Rule: r, Why: why})
		}
	}
	return out
}

// AffinityNames returns the rules' names sorted.
func (s *State) AffinityNames() []string {
	names := make([]string, 0, len(s.Affinity))
	for n := range s.Affinity {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// where is the host the VM runs on, or the destination of the migration
// that holds it when it has one.
func (s *State) where(vm *VM) string {
	if m := s.Migrations[vm.Migration]; vm.Migration != "" && m != nil && !m.State.Final() && m.Dest != "" {
		return m.Dest
	}
	return vm.Host
}

func (s *State) breach(r *AffinityRule, k string, vm *VM, dest string) string {
	switch r.Kind {
	case AffinityHostMust, AffinityHostPrefer:
		if !slices.Contains(r.Hosts, dest) {
			return fmt.Sprintf("vm %s runs only on %s, not on %s", vm.Name, strings.Join(r.Hosts, ", "), dest)
		}
	case AffinityHostAvoid:
		if slices.Contains(r.Hosts, dest) {
			return fmt.Sprintf("vm %s does not run on %s", vm.Name, dest)
		}
	case AffinityApart:
		var with []string
		for _, ok := range r.VMs {
			o := s.VMs[ok]
			if ok == k || o == nil {
				continue
			}
			if o.Host == dest || s.where(o) == dest {
				with = append(with, o.Name)
			}
		}
		if len(with) > 0 {
			return fmt.Sprintf("vm %s would share %s with vm %s", vm.Name, dest, strings.Join(with, ", "))
		}
	case AffinityTogether:
		src := s.Hosts[vm.Host]
		draining := src != nil && src.State == HostPreparingForMaintenance
		var elsewhere []string
		for _, ok := range r.VMs {
			o := s.VMs[ok]
			if ok == k || o == nil {
				continue
			}
			at := s.where(o)
			if at == dest || (draining && at == vm.Host) {
				continue
			}
			elsewhere = append(elsewhere, fmt.Sprintf("vm %s is on %s", o.Name, at))
		}
		if len(elsewhere) > 0 {
			return fmt.Sprintf("vm %s must run with its group, but %s", vm.Name, strings.Join(elsewhere, ", "))
		}
	}
	return ""
}
