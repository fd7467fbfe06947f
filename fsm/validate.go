package fsm

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of one command, checked by Validate before it enters the log.
// They are far above what a real mesh writes and far below what would
// hurt it: one entry is copied to every replica's log and kept until the
// next snapshot (a 10 MiB junk body grew every raft.db by 27 MiB).
const (
	// MaxEntryBytes bounds one log entry. The largest real entry is a
	// host's inventory: about 400 bytes a VM, so 1,000 VMs take 400 KiB.
	MaxEntryBytes = 1 << 20
	// MaxVMsPerHost bounds one inventory (SyncVMs).
	MaxVMsPerHost = 1000
	// MaxMemMiB bounds any memory figure: 64 TiB.
	MaxMemMiB = 64 << 20
	// MaxCPUs bounds CPU and vCPU counts.
	MaxCPUs = 16384
	// MaxParallel bounds a migration's connections (QEMU multifd
	// channels accept up to 255; more than 64 helps no link).
	MaxParallel = 64
	// MaxBandwidthMiB bounds any bandwidth: 1 TiB/s.
	MaxBandwidthMiB = 1 << 20
	// MaxList bounds lists of names (networks, storage domains, CPU flags
	// and models, shares); MaxDevices the NICs and disks of one VM.
	MaxList    = 1024
	MaxDevices = 64
	// MaxText bounds free text (reasons, placement explanations).
	MaxText = 64 << 10
	// MaxName bounds VM, network and storage names; host and cluster
	// names are DNS names (253).
	MaxName = 255
	// MaxSlots bounds a cluster's slot limits.
	MaxSlots = 1000
)

// validator decodes one command type's payload strictly and checks it.
type validator func(data []byte) error

// validatorOf builds the validator of command T.
func validatorOf[T any, P interface {
	*T
	validate() error
}]() validator {
	return func(data []byte) error {
		var c T
		if err := decode(data, &c); err != nil {
			return err
		}
		if err := P(&c).validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil
	}
}

var validators = map[CommandType]validator{
	CmdUpsertHost:     validatorOf[UpsertHost](),
	CmdSetHostState:   validatorOf[SetHostState](),
	CmdRemoveHost:     validatorOf[RemoveHost](),
	CmdSyncVMs:        validatorOf[SyncVMs](),
	CmdEnqueue:        validatorOf[Enqueue](),
	CmdGrant:          validatorOf[Grant](),
	CmdProgress:       validatorOf[ProgressUpdate](),
	CmdFinish:         validatorOf[Finish](),
	CmdCancel:         validatorOf[Cancel](),
	CmdSetCluster:     validatorOf[SetCluster](),
	CmdStartDrain:     validatorOf[StartDrain](),
	CmdEndDrain:       validatorOf[EndDrain](),
	CmdActivate:       validatorOf[Activate](),
	CmdReshare:        validatorOf[Reshare](),
	CmdLeaderElected:  validatorOf[LeaderElected](),
	CmdUnsettled:      validatorOf[Unsettled](),
	CmdSetVM:          validatorOf[SetVM](),
	CmdCreateAffinity: validatorOf[CreateAffinity](),
	CmdDeleteAffinity: validatorOf[DeleteAffinity](),
	CmdBalanceNote:    validatorOf[BalanceNote](),
	CmdSetCPUBaseline: validatorOf[SetCPUBaseline](),
}

// Validate checks an entry before it is proposed to Raft: its size, its
// type, a strict decoding of its payload, and every static field of the
// command (names, list sizes, figures, states). It does not look at the
// state: Apply decides against the state, the same on every replica. An
// error wraps ErrMalformed: the API answers 400 and nothing is logged.
//
// A type this version does not know is refused unless it carries
// IgnorableFlag (then its payload must only be JSON): a leader must not
// log a command it cannot vouch for, and an ignorable one harms no
// replica that skips it.
func Validate(entry []byte) error {
	switch {
	case len(entry) == 0:
		return fmt.Errorf("%w: empty entry", ErrMalformed)
	case len(entry) > MaxEntryBytes:
		return fmt.Errorf("%w: entry of %d bytes is over the limit of %d", ErrMalformed, len(entry), MaxEntryBytes)
	}
	t := CommandType(entry[0])
	v, ok := validators[t&^IgnorableFlag]
	switch {
	case ok:
		if err := v(entry[1:]); err != nil {
			return fmt.Errorf("command %s: %w", t, err)
		}
		return nil
	case t&IgnorableFlag != 0:
		if !json.Valid(entry[1:]) {
			return fmt.Errorf("%w: ignorable command type %d: payload is not JSON", ErrMalformed, entry[0])
		}
		return nil
	}
	return fmt.Errorf("%w: command type %d is unknown to this leader (a newer meshd sent it: upgrade the leader)", ErrMalformed, entry[0])
}

// checks collects the first problem of a command's fields.
type checks struct{ err error }

func (c *checks) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// host checks a host (or cluster) name: a DNS name of letters, digits,
// dots, dashes and underscores, starting with a letter or digit, as
// certificates and URLs carry it.
func (c *checks) host(what, s string) {
	if len(s) == 0 || len(s) > 253 {
		c.fail("%s %q: must be 1 to 253 characters", what, s)
		return
	}
	for i, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || (i > 0 && strings.ContainsRune(".-_", r)))
		if !ok {
			c.fail("%s %q: only letters, digits and . - _ (not first) are allowed", what, s)
			return
		}
	}
}

// optHost checks a host name that may be empty.
func (c *checks) optHost(what, s string) {
	if s != "" {
		c.host(what, s)
	}
}

// name checks a VM, network or storage name: 1 to MaxName bytes of UTF-8
// without control characters or '/'. libvirt allows nearly any name; these
// exclusions keep names printable and usable in paths.
func (c *checks) name(what, s string) {
	if len(s) == 0 || len(s) > MaxName {
		c.fail("%s %q: must be 1 to %d bytes", what, s, MaxName)
		return
	}
	c.printable(what, s, MaxName)
	if strings.ContainsRune(s, '/') {
		c.fail("%s %q: must not contain /", what, s)
	}
}

// printable checks free text: valid UTF-8, no control characters, bounded.
func (c *checks) printable(what, s string, limit int) {
	if len(s) > limit {
		c.fail("%s: %d bytes is over the limit of %d", what, len(s), limit)
		return
	}
	if !utf8.ValidString(s) {
		c.fail("%s: not valid UTF-8", what)
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			c.fail("%s: control character %U", what, r)
			return
		}
	}
}

func (c *checks) text(what, s string) { c.printable(what, s, MaxText) }

// actor checks who a command says asked for it.
func (c *checks) actor(s string) { c.printable("actor", s, MaxName) }

// token checks a short identifier-like value (policy, arch, cache mode).
func (c *checks) token(what, s string) { c.printable(what, s, 128) }

// uuid checks an optional libvirt UUID: 8-4-4-4-12 hex digits.
func (c *checks) uuid(what, s string) {
	if s == "" {
		return
	}
	if !isUUID(s) {
		c.fail("%s %q: not a UUID (8-4-4-4-12 hex digits)", what, s)
	}
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// migrationID checks an "m<N>" ID.
func (c *checks) migrationID(what, s string) {
	if _, ok := migrationNumber(s); !ok {
		c.fail("%s %q: not a migration ID (m1, m2, ...)", what, s)
	}
}

func (c *checks) between(what string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.fail("%s %d: must be %d to %d", what, v, lo, hi)
	}
}

func (c *checks) atMost(what string, v, hi uint64) {
	if v > hi {
		c.fail("%s %d: over the limit of %d", what, v, hi)
	}
}

func (c *checks) listLen(what string, n, limit int) {
	if n > limit {
		c.fail("%s: %d items, over the limit of %d", what, n, limit)
	}
}

func (c *checks) names(what string, list []string) {
	c.listLen(what, len(list), MaxList)
	for _, s := range list {
		c.name(what, s)
	}
}

func (c *checks) time(what string, t time.Time) {
	if t.IsZero() {
		c.fail("%s: missing", what)
	}
}

func (c *checks) network(what string, n Network) {
	c.name(what, n.Name)
	c.between(what+" VLAN", int64(n.VLAN), 0, 4094)
}

func (c *checks) facts(f HostFacts) {
	c.host("host", f.Name)
	c.host("cluster", f.Cluster)
	for _, x := range [][2]string{{"api address", f.APIAddr}, {"raft address", f.RaftAddr}, {"management address", f.MgmtAddr},
		{"migration address", f.MigrationAddr}, {"hypervisor URI", f.HypervisorURI}, {"hypervisor", f.Hypervisor}, {"arch", f.Arch},
		{"CPU model", f.CPUModel}, {"version", f.Version}} {
		c.printable(x[0], x[1], MaxName)
	}
	c.names("CPU flags", f.CPUFlags)
	c.names("CPU models", f.CPUModels)
	c.printable("CPU definition", f.CPUXML, MaxCPUXML)
	c.cpuVerdicts(f.CPUVerdicts)
	// Free memory is not checked against the total: libvirt's test driver
	// reports more free than total, and refusing a host's facts would keep
	// it out of the mesh for good.
	c.atMost("total memory MiB", f.MemTotalMiB, MaxMemMiB)
	c.atMost("free memory MiB", f.MemFreeMiB, MaxMemMiB)
	c.atMost("reserved memory MiB", f.MemReservedMiB, MaxMemMiB)
	c.between("CPUs", int64(f.CPUs), 0, MaxCPUs)
	c.between("free CPUs", int64(f.CPUsFree), 0, int64(f.CPUs))
	c.listLen("networks", len(f.Networks), MaxList)
	for _, n := range f.Networks {
		c.network("network", n)
	}
	c.names("storage domains", f.StorageDomains)
}

func validVMState(s string) bool {
	switch s {
	case VMRunning, VMPaused, VMShutoff, VMUnknown:
		return true
	}
	return false
}

func (c *checks) vm(v VM) {
	c.name("vm", v.Name)
	c.uuid("vm "+v.Name+" UUID", v.UUID)
	c.optHost("vm "+v.Name+" host", v.Host)
	c.atMost("vm "+v.Name+" memory MiB", v.MemoryMiB, MaxMemMiB)
	c.between("vm "+v.Name+" vCPUs", int64(v.VCPUs), 0, MaxCPUs)
	c.printable("vm "+v.Name+" CPU model", v.CPUModel, MaxName)
	c.names("vm "+v.Name+" CPU flags", v.CPUFlags)
	c.printable("vm "+v.Name+" CPU definition", v.CPUXML, MaxCPUXML)
	c.listLen("vm "+v.Name+" NICs", len(v.NICs), MaxDevices)
	for _, n := range v.NICs {
		c.token("vm "+v.Name+" MAC", n.MAC)
		c.network("vm "+v.Name+" network", Network{Name: n.Network, VLAN: n.VLAN})
	}
	c.listLen("vm "+v.Name+" disks", len(v.Disks), MaxDevices)
	for _, d := range v.Disks {
		c.token("vm "+v.Name+" disk target", d.Target)
		c.printable("vm "+v.Name+" disk source", d.Source, 4096)
		if d.StorageDomain != "" {
			c.name("vm "+v.Name+" storage domain", d.StorageDomain)
		}
		c.token("vm "+v.Name+" disk cache", d.Cache)
		c.token("vm "+v.Name+" disk format", d.Format)
	}
	c.listLen("vm "+v.Name+" host devices", len(v.HostDevices), MaxDevices)
	for _, d := range v.HostDevices {
		c.printable("vm "+v.Name+" host device", d, MaxName)
	}
	if !validVMState(v.State) {
		c.fail("vm %s: unknown state %q", v.Name, v.State)
	}
	if v.Migration != "" {
		c.fail("vm %s: an inventory cannot say which migration holds it", v.Name)
	}
}

func (c *checks) shares(list []Share) {
	c.listLen("shares", len(list), MaxList)
	for _, s := range list {
		c.migrationID("share", s.ID)
		c.atMost("share bandwidth MiB", s.BandwidthMiB, MaxBandwidthMiB)
	}
}

func (x UpsertHost) validate() error {
	var c checks
	c.facts(x.Facts)
	return c.err
}

func (x SetHostState) validate() error {
	var c checks
	c.host("host", x.Host)
	if !validHostState(x.State) {
		c.fail("unknown host state %q", x.State)
	}
	c.text("reason", x.Reason)
	return c.err
}

func (x RemoveHost) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("host", x.Host)
	return c.err
}

func (x SyncVMs) validate() error {
	var c checks
	c.host("host", x.Host)
	c.listLen("vms", len(x.VMs), MaxVMsPerHost)
	names := map[string]bool{}
	for _, v := range x.VMs {
		c.vm(v)
		if names[v.Name] {
			c.fail("vm %q listed twice", v.Name)
		}
		names[v.Name] = true
	}
	return c.err
}

func (x Enqueue) validate() error {
	var c checks
	c.actor(x.Actor)
	c.name("vm", x.VM)
	c.optHost("destination", x.Dest)
	c.token("policy", x.Policy)
	c.atMost("bandwidth MiB", x.BandwidthMiB, MaxBandwidthMiB)
	c.between("parallel connections", int64(x.Parallel), 0, MaxParallel)
	c.optHost("drain", x.Drain)
	c.time("time", x.At)
	return c.err
}

func (x Grant) validate() error {
	var c checks
	c.migrationID("migration", x.ID)
	c.host("destination", x.Dest)
	c.atMost("bandwidth MiB", x.BandwidthMiB, MaxBandwidthMiB)
	c.text("reason", x.Reason)
	c.time("time", x.At)
	c.shares(x.Reshare)
	return c.err
}

func (x Reshare) validate() error {
	var c checks
	c.shares(x.Shares)
	return c.err
}

func (x ProgressUpdate) validate() error {
	var c checks
	c.migrationID("migration", x.ID)
	c.between("attempt", int64(x.Attempt), 1, maxAttempts)
	p := x.Progress
	if p.Percent < 0 || p.Percent > 100 {
		c.fail("percent %v: must be 0 to 100", p.Percent)
	}
	if p.MiBps < 0 {
		c.fail("rate %v MiB/s: negative", p.MiBps)
	}
	c.between("elapsed ms", p.ElapsedMs, 0, 1<<50)
	c.between("iteration", int64(p.Iteration), 0, 1<<31)
	c.between("max downtime ms", p.MaxDowntimeMs, 0, 1<<40)
	c.between("throttle percent", int64(p.ThrottlePercent), 0, 100)
	c.between("post-copy at ms", p.PostCopyAtMs, 0, 1<<50)
	c.between("suspended at ms", p.SuspendedAtMs, 0, 1<<50)
	c.between("first byte ms", p.FirstByteMs, 0, 1<<50)
	if pr := p.Prediction; pr != nil {
		c.between("predicted total ms", pr.TotalMs, 0, 1<<50)
		c.between("predicted passes", int64(pr.Passes), 0, 1<<20)
		c.printable("predicted choice", pr.Choice, MaxName)
		c.between("predicted setup ms", pr.SetupMs, 0, 1<<50)
		c.printable("predicted data from", pr.DataFrom, MaxName)
	}
	c.listLen("actions", len(p.Actions), MaxDevices)
	for _, a := range p.Actions {
		c.printable("action", a, MaxName)
	}
	return c.err
}

func (x Finish) validate() error {
	var c checks
	c.actor(x.Actor)
	c.migrationID("migration", x.ID)
	c.between("attempt", int64(x.Attempt), 1, maxAttempts)
	if !x.State.Final() {
		c.fail("state %q is not a final state", x.State)
	}
	c.text("reason", x.Reason)
	c.between("downtime ms", x.DowntimeMs, 0, 1<<40)
	c.time("time", x.At)
	return c.err
}

func (x Unsettled) validate() error {
	var c checks
	c.migrationID("migration", x.ID)
	c.between("attempt", int64(x.Attempt), 1, maxAttempts)
	c.text("reason", x.Reason)
	if x.Alarm && x.Reason == "" {
		c.fail("an alarm needs a reason")
	}
	c.listLen("hosts", len(x.Hosts), MaxList)
	for _, h := range x.Hosts {
		c.host("host", h)
	}
	c.time("time", x.At)
	return c.err
}

func (x Cancel) validate() error {
	var c checks
	c.actor(x.Actor)
	c.migrationID("migration", x.ID)
	c.time("time", x.At)
	return c.err
}

func (x SetCluster) validate() error {
	var c checks
	c.actor(x.Actor)
	cl := x.Cluster
	c.host("cluster", cl.Name)
	c.between("max outgoing", int64(cl.MaxOutgoing), 1, MaxSlots)
	c.between("max incoming", int64(cl.MaxIncoming), 1, MaxSlots)
	c.between("max concurrent", int64(cl.MaxConcurrent), 1, MaxSlots)
	if cl.BandwidthMode != BandwidthFixed && cl.BandwidthMode != BandwidthAuto {
		c.fail("bandwidth mode %q is neither %q nor %q", cl.BandwidthMode, BandwidthFixed, BandwidthAuto)
	}
	c.atMost("bandwidth MiB", cl.BandwidthMiB, MaxBandwidthMiB)
	c.atMost("migration network MiB", cl.MigrationNetMiB, MaxBandwidthMiB)
	c.between("migration parallel connections", int64(cl.MigrationParallel), 0, MaxParallel)
	c.between("setup overlap ms", cl.OverlapMs, 0, MaxOverlapMs)
	if t := cl.MigrationTransport; t != "" && t != TransportTLS && t != TransportPlain {
		c.fail("migration transport %q is neither %q nor %q", t, TransportTLS, TransportPlain)
	}
	c.token("policy", cl.Policy)
	if cl.MigrationTransport != "" && cl.MigrationTransport != TransportTLS && cl.MigrationTransport != TransportPlain {
		c.fail("migration transport %q is neither %q nor %q", cl.MigrationTransport, TransportTLS, TransportPlain)
	}
	c.names("required networks", cl.RequiredNetworks)
	c.names("CPU baseline", cl.CPUBaseline)
	if b := cl.Balance; b != "" && b != BalanceOff && b != BalanceMemory && b != BalanceCPU {
		c.fail("balance %q is none of %q, %q, %q", b, BalanceOff, BalanceMemory, BalanceCPU)
	}
	c.between("balance threshold", int64(cl.BalanceThreshold), 0, 100)
	c.between("balance hold seconds", cl.BalanceHoldSeconds, 0, 30*24*3600)
	c.between("balance budget", int64(cl.BalanceBudget), 0, 10000)
	return c.err
}

func (x StartDrain) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("host", x.Host)
	c.token("reason", x.Reason)
	c.token("policy", x.Policy)
	c.time("time", x.At)
	if p := x.PredictedSeconds; math.IsNaN(p) || p < 0 || p > 1e7 {
		c.fail("predicted seconds %v: must be 0 to 1e7", p)
	}
	return c.err
}

func (x EndDrain) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("host", x.Host)
	if x.State != DrainCancelled && x.State != DrainStuck {
		c.fail("state %q must be %q or %q", x.State, DrainCancelled, DrainStuck)
	}
	c.time("time", x.At)
	return c.err
}

func (x Activate) validate() error {
	var c checks
	c.actor(x.Actor)
	c.host("host", x.Host)
	return c.err
}

func (x LeaderElected) validate() error {
	var c checks
	c.host("leader", x.Leader)
	c.between("version", int64(x.Version), 1, 1<<16)
	c.time("time", x.At)
	return c.err
}
