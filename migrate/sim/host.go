package sim

import (
	"context"
	"crypto/sha1"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// HostSpec is the capacity of a sim host.
type HostSpec struct {
	Name        string
	Arch        string // default "x86_64"
	CPUModel    string
	CPUFlags    []string
	MemTotalMiB uint64
	CPUs        int
}

// VMSpec is a simulated guest. DirtyMiBps is how fast its workload dirties
// memory: 0 is idle, more than the migration bandwidth never converges without
// auto-converge or post-copy. WorkingSetMiB bounds what can be dirty at once
// (0: all memory); real workloads write to a hot set, which is why stuck
// migrations hover at a high percentage rather than at zero.
type VMSpec struct {
	Name string
	// UUID identifies the guest as libvirt's does; Define gives a VM
	// without one a UUID derived from its host and name, so it keeps it
	// through migrations and two VMs of one name on two hosts differ.
	// Define the same UUID on two hosts to simulate a split brain.
	UUID          string
	MemoryMiB     uint64
	VCPUs         int
	DirtyMiBps    float64
	WorkingSetMiB uint64
	CPUModel      string
	CPUFlags      []string
	NICs          []fsm.NIC
	Disks         []fsm.Disk
	// HostDevices are passthrough devices: such a guest is reported with
	// them and the mesh does not migrate it.
	HostDevices []string
}

// vm is a defined guest and what is happening to it. reason is libvirt's
// state reason where a migration gives one ("migrated", "post-copy",
// "post-copy failed"): a source copy paused with reason post-copy or
// post-copy failed only serves pages, the guest runs on the destination.
type vm struct {
	spec   VMSpec
	state  string
	reason string
	job    *job // outgoing migration, if any (kept while a broken post-copy waits)
}

// servesPages reports whether v is the source side of a post-copy.
func (v *vm) servesPages() bool {
	return v.state == fsm.VMPaused && (v.reason == migrate.ReasonPostCopy || v.reason == migrate.ReasonPostCopyFailed)
}

// reservation is an incoming migration: its memory counts as used from the
// moment the source asks, as a destination QEMU's does.
type reservation struct {
	spec   VMSpec
	source string
}

// Host is one simulated hypervisor host. It implements migrate.Hypervisor.
type Host struct {
	spec HostSpec
	reg  *Registry

	mu       sync.Mutex
	vms      map[string]*vm
	incoming map[string]reservation
	seq      uint64
	failOut  *failure // next outgoing migration fails
	failIn   error    // next incoming reservation is refused
	// lastParams keeps the settings of the latest migration started from
	// here, per VM, so tests can check what the mesh asked for (TLS, say).
	lastParams map[string]migrate.Params
	// ended keeps each VM's last ended migration job, as libvirt keeps
	// completed-job stats: on the source after a failure, on the
	// destination after a success.
	ended map[string]migrate.EndedJob
	// linkDown: the host's migration link is down; streams from and to it
	// stall (they do not fail: TCP waits) until it is up again.
	linkDown bool
	down     bool // unreachable to peers (SetDown)
	resumes  int
	// resumedGuests counts the paused VMs Resume resumed.
	resumedGuests int
}

// failure is an injected failure of a job once it processed frac of memory.
type failure struct {
	frac float64
	err  error
}

var _ migrate.Hypervisor = (*Host)(nil)

func newHost(spec HostSpec, reg *Registry) *Host {
	if spec.Arch == "" {
		spec.Arch = "x86_64"
	}
	spec.CPUFlags = slices.Clone(spec.CPUFlags)
	return &Host{spec: spec, reg: reg, vms: map[string]*vm{}, incoming: map[string]reservation{},
		lastParams: map[string]migrate.Params{}, ended: map[string]migrate.EndedJob{}}
}

// Name is the host's name.
func (h *Host) Name() string { return h.spec.Name }

// URI is the DestURI other hosts of the same Registry use to reach this one.
func (h *Host) URI() string { return "sim://" + h.spec.Name }

// Define adds a running VM. It refuses a duplicate name or a VM that does not
// fit in free memory, so a test notices when it overcommits by mistake.
func (h *Host) Define(s VMSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.admitLocked(s); err != nil {
		return fmt.Errorf("define vm %q on %s: %w", s.Name, h.spec.Name, err)
	}
	if s.UUID == "" {
		s.UUID = uuidOf(h.spec.Name + "/" + s.Name)
	}
	h.vms[s.Name] = &vm{spec: cloneSpec(s), state: fsm.VMRunning}
	return nil
}

// admitLocked checks that s may be placed on h.
func (h *Host) admitLocked(s VMSpec) error {
	if _, ok := h.vms[s.Name]; ok {
		return ErrExists
	}
	for _, r := range h.incoming {
		if r.spec.Name == s.Name {
			return ErrExists
		}
	}
	if free := h.freeLocked(); s.MemoryMiB > free {
		return fmt.Errorf("%w: need %d MiB, %d MiB free", ErrNoMemory, s.MemoryMiB, free)
	}
	return nil
}

// Remove undefines a VM. A VM with a migration job is refused (ErrBusy).
func (h *Host) Remove(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vms[name]
	if !ok {
		return fmt.Errorf("remove vm %q from %s: %w", name, h.spec.Name, migrate.ErrNoDomain)
	}
	if v.job != nil {
		return fmt.Errorf("remove vm %q from %s: %w", name, h.spec.Name, ErrBusy)
	}
	delete(h.vms, name)
	return nil
}

// SetDirtyRate changes a VM's workload; a running migration sees it at its
// next step.
func (h *Host) SetDirtyRate(name string, mibps float64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vms[name]
	if !ok {
		return fmt.Errorf("set dirty rate of vm %q on %s: %w", name, h.spec.Name, migrate.ErrNoDomain)
	}
	v.spec.DirtyMiBps = mibps
	return nil
}

// SetState sets a VM's state (fsm.VMRunning, VMPaused, VMShutoff), so tests
// can check that a shut-off VM is not live-migrated.
func (h *Host) SetState(name, state string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vms[name]
	if !ok {
		return fmt.Errorf("set state of vm %q on %s: %w", name, h.spec.Name, migrate.ErrNoDomain)
	}
	v.state = state
	return nil
}

// FailNextMigration makes the next migration started from this host fail at
// its first step with err (wrapped); the VM stays here.
func (h *Host) FailNextMigration(err error) { h.FailNextMigrationAt(0, err) }

// FailNextMigrationAt makes the next migration from this host fail once it has
// sent frac (0..1) of the VM's memory.
func (h *Host) FailNextMigrationAt(frac float64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failOut = &failure{frac: frac, err: err}
}

// RefuseNextIncoming makes this host refuse the next incoming migration with
// err, as a destination at its limit answers "busy".
func (h *Host) RefuseNextIncoming(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failIn = err
}

// LastMigration returns the parameters of the latest migration of the named
// VM started from this host (DestURI, bandwidth, TLS...). The sim moves no
// bytes, so TLS changes nothing in it; tests read it back here to check the
// mesh passed the cluster's transport.
func (h *Host) LastMigration(name string) (migrate.Params, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.lastParams[name]
	if ok {
		p.CopyStorage = slices.Clone(p.CopyStorage)
	}
	return p, ok
}

// VM returns a VM's spec and state.
func (h *Host) VM(name string) (VMSpec, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vms[name]
	if !ok {
		return VMSpec{}, "", false
	}
	return cloneSpec(v.spec), v.state, true
}

// VMNames lists the VMs this host runs, sorted: not the source's copy of
// a VM in post-copy, which only serves the pages the destination lacks.
func (h *Host) VMNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.vms))
	for n, v := range h.vms {
		if !v.servesPages() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// FreeMiB is total memory minus the VMs' memory and incoming reservations.
func (h *Host) FreeMiB() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freeLocked()
}

// ReservedMiB is the memory held for incoming migrations.
func (h *Host) ReservedMiB() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reservedLocked()
}

func (h *Host) reservedLocked() uint64 {
	var sum uint64
	for _, r := range h.incoming {
		sum += r.spec.MemoryMiB
	}
	return sum
}

func (h *Host) freeLocked() uint64 {
	var used uint64
	for _, v := range h.vms {
		used += v.spec.MemoryMiB
	}
	for _, r := range h.incoming {
		used += r.spec.MemoryMiB
	}
	if used >= h.spec.MemTotalMiB {
		return 0
	}
	return h.spec.MemTotalMiB - used
}

// Capabilities implements migrate.Hypervisor.
func (h *Host) Capabilities(context.Context) (migrate.Capabilities, error) {
	h.mu.Lock()
	free, reserved := h.freeLocked(), h.reservedLocked()
	h.mu.Unlock()
	return migrate.Capabilities{
		Arch:           h.spec.Arch,
		CPUModel:       h.spec.CPUModel,
		CPUFlags:       slices.Clone(h.spec.CPUFlags),
		MemTotalMiB:    h.spec.MemTotalMiB,
		MemFreeMiB:     free,
		MemReservedMiB: reserved,
		CPUs:           h.spec.CPUs,
	}, nil
}

// Domains implements migrate.Hypervisor: the VMs this host runs, sorted.
// Incoming VMs appear only once their migration switched over.
func (h *Host) Domains(context.Context) ([]migrate.Domain, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]migrate.Domain, 0, len(h.vms))
	for _, v := range h.vms {
		s := v.spec
		out = append(out, migrate.Domain{
			Name:      s.Name,
			UUID:      s.UUID,
			State:     v.state,
			MemoryMiB: s.MemoryMiB,
			VCPUs:     s.VCPUs,
			CPUModel:  s.CPUModel,
			CPUFlags:  slices.Clone(s.CPUFlags),
			CPUXML:    vmCPUXML(s),
			NICs:      slices.Clone(s.NICs),
			Disks:     slices.Clone(s.Disks),

			HostDevices: slices.Clone(s.HostDevices),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Close implements migrate.Hypervisor; a sim host holds no connection.
func (h *Host) Close() error { return nil }

// uuidOf derives a stable UUID from a string (host/VM name), so a VM keeps
// its UUID between runs.
func uuidOf(name string) string {
	b := sha1.Sum([]byte("hostmesh-sim/" + name))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func cloneSpec(s VMSpec) VMSpec {
	s.CPUFlags = slices.Clone(s.CPUFlags)
	s.NICs = slices.Clone(s.NICs)
	s.Disks = slices.Clone(s.Disks)
	s.HostDevices = slices.Clone(s.HostDevices)
	return s
}
