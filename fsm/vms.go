package fsm

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// VMs are keyed by their libvirt UUID: two domains of one name on two
// hosts are two VMs (a name is unique only per host), and the same UUID on
// two hosts is one VM running twice (a split brain). Names are still what
// operators type; ResolveVM turns either into a VM.
//
// A VM reported without a UUID (only in v1 logs and snapshots: both
// hypervisor drivers report one) is keyed "name:" + its name, the identity
// v1 gave every VM, so such VMs stay one per name.

// legacyPrefix starts the key of a VM without a UUID.
const legacyPrefix = "name:"

// VMKey is the key of a VM in State.VMs: its UUID in lower case, or
// "name:" + its name when it has none.
func VMKey(uuid, name string) string {
	if uuid != "" {
		return strings.ToLower(uuid)
	}
	return legacyPrefix + name
}

// Key is the VM's key in State.VMs.
func (v *VM) Key() string { return VMKey(v.UUID, v.Name) }

// ErrNoVM means no VM matches a reference.
var ErrNoVM = errors.New("no such VM")

// ErrAmbiguousVM means a name matches VMs on several hosts.
var ErrAmbiguousVM = errors.New("ambiguous VM name")

// AmbiguousVMError lists the VMs a name matches, so the operator can name
// one by its UUID.
type AmbiguousVMError struct {
	Name       string
	Candidates []VM // sorted by host, then UUID
}

func (e *AmbiguousVMError) Error() string {
	parts := make([]string, len(e.Candidates))
	for i, v := range e.Candidates {
		parts[i] = fmt.Sprintf("on %s (uuid %s)", v.Host, orNone(v.UUID))
	}
	return fmt.Sprintf("%v: %d VMs are named %q: %s; name one by its UUID", ErrAmbiguousVM, len(e.Candidates), e.Name, strings.Join(parts, ", "))
}

// Unwrap makes errors.Is(err, ErrAmbiguousVM) true.
func (e *AmbiguousVMError) Unwrap() error { return ErrAmbiguousVM }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ResolveVM finds the VM an operator means: ref is a UUID (any case), a
// key, or a name that exactly one VM has. It returns the VM's key too.
func (s *State) ResolveVM(ref string) (string, *VM, error) {
	if ref == "" {
		return "", nil, fmt.Errorf("%w: empty reference", ErrNoVM)
	}
	if vm := s.VMs[strings.ToLower(ref)]; vm != nil {
		return strings.ToLower(ref), vm, nil
	}
	if vm := s.VMs[ref]; vm != nil {
		return ref, vm, nil
	}
	keys := s.keysNamed(ref)
	switch len(keys) {
	case 0:
		return "", nil, fmt.Errorf("vm %q: %w", ref, ErrNoVM)
	case 1:
		return keys[0], s.VMs[keys[0]], nil
	}
	e := &AmbiguousVMError{Name: ref}
	for _, k := range keys {
		e.Candidates = append(e.Candidates, *s.VMs[k])
	}
	return "", nil, e
}

// keysNamed returns the keys of the VMs named name, by host then key.
func (s *State) keysNamed(name string) []string {
	var keys []string
	for k, vm := range s.VMs {
		if vm.Name == name {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := s.VMs[keys[i]], s.VMs[keys[j]]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return keys[i] < keys[j]
	})
	return keys
}

// MigrationVMKey is the key of the VM a migration moves. A migration
// queued before the log's version 2 names its VM only (v1 had no UUIDs);
// its VM is then the one VM of that name, as in v1.
func (s *State) MigrationVMKey(m *Migration) string {
	if m.VMUUID != "" {
		return VMKey(m.VMUUID, m.VM)
	}
	if keys := s.keysNamed(m.VM); len(keys) == 1 {
		return keys[0]
	}
	return ""
}

// VMOf returns the VM a migration moves, or nil when it is gone.
func (s *State) VMOf(m *Migration) *VM {
	return s.VMs[s.MigrationVMKey(m)]
}
