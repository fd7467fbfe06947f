package migrate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// Check names, stable and user-visible: operators see them in refusals and in
// `meshctl migrate --dry-run`, and scripts may match on them.
const (
	CheckVMExists      = "vm-exists"
	CheckVMRunning     = "vm-running"
	CheckNotMigrating  = "not-migrating"
	CheckMigratable    = "migratable"
	CheckSplitBrain    = "split-brain"
	CheckDistinctHosts = "distinct-hosts"
	CheckSameCluster   = "same-cluster"
	CheckSourceUp      = "source-up"
	CheckDestUp        = "dest-up"
	CheckNetworks      = "networks"
	CheckStorage       = "storage"
	CheckMemory        = "memory"
	CheckCPU           = "cpu"
	CheckCPUModel      = "cpu-model"
	CheckCacheMode     = "cache-mode"
	CheckAffinity      = "affinity"
)

// CheckResult is the outcome of one prerequisite check. Message carries the
// values compared (free memory, missing networks, offending disks) so that an
// operator can act on a refusal without looking anything up. Message does not
// repeat Name; String joins the two.
type CheckResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// String renders the result as "name: message", the form used in refusals.
func (r CheckResult) String() string { return r.Name + ": " + r.Message }

// ErrRefused is matched (errors.Is) by every RefusedError, so callers can tell
// a refused migration from a transport or Raft failure.
var ErrRefused = errors.New("migration refused")

// RefusedError says which prerequisite checks failed for moving VM to Dest.
type RefusedError struct {
	VM, Dest string
	Failed   []CheckResult
}

// Error names each failed check and its message.
func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		parts[i] = r.String()
	}
	return fmt.Sprintf("migration of vm %s to host %s refused: %s", e.VM, e.Dest, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Refusal turns check results into an error: nil when every check passed,
// otherwise a *RefusedError listing the failed ones in check order.
func Refusal(vm, dest string, results []CheckResult) error {
	var failed []CheckResult
	for _, r := range results {
		if !r.OK {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &RefusedError{VM: vm, Dest: dest, Failed: failed}
}

// CheckMigration runs every prerequisite check for moving the VM whose key
// (fsm.VMKey: its UUID) is vm to dest, in a fixed order, and returns all
// results: an operator fixing a refusal wants
// every problem at once, not one per attempt. A check whose inputs are missing
// (unknown VM or host) fails with "not checked" rather than passing, so that
// all-OK always means the move is allowed.
func CheckMigration(st *fsm.State, vm string, dest string) []CheckResult {
	return checkFor(st, vm, dest, "")
}

// CheckQueued runs the checks for a migration already in the queue: the VM is
// then held by m itself, so not-migrating ignores m.ID, and only migrations
// ahead of m in the queue count as incoming memory on dest.
func CheckQueued(st *fsm.State, m *fsm.Migration, dest string) []CheckResult {
	key := st.MigrationVMKey(m)
	if key == "" {
		key = m.VM // gone: the checks say so by its name
	}
	return checkFor(st, key, dest, m.ID)
}

// GrantCheck is the fsm.GrantCheck meshd gives its FSM: every prerequisite
// check of the queued migration m towards dest, against the state the
// Grant is applied to. It reads nothing but its arguments, so every
// replica refuses the same grants.
func GrantCheck(st *fsm.State, m *fsm.Migration, dest string) error {
	return Refusal(m.VM, dest, CheckQueued(st, m, dest))
}

var _ fsm.GrantCheck = GrantCheck

// checkCtx is what every check reads; own is the ID of the migration being
// checked ("" for a new request).
type checkCtx struct {
	st *fsm.State
	// vmKey is the VM's key in st.VMs (fsm.VMKey).
	vmKey string
	// vmName is the VM's name for messages (its key when it is unknown).
	vmName           string
	vm               *fsm.VM
	srcName, dstName string
	src, dst         *fsm.Host
	own              string
}

// check is one named prerequisite.
type check struct {
	name string
	run  func(c *checkCtx) (bool, string)
}

// checks is the fixed order: identity first, then host states, then the
// resources, so the first failure of a host is the most fundamental one.
var checks = []check{
	{CheckVMExists, checkVMExists},
	{CheckVMRunning, checkVMRunning},
	{CheckNotMigrating, checkNotMigrating},
	{CheckMigratable, checkMigratable},
	{CheckSplitBrain, checkSplitBrain},
	{CheckDistinctHosts, checkDistinctHosts},
	{CheckSameCluster, checkSameCluster},
	{CheckSourceUp, checkSourceUp},
	{CheckDestUp, checkDestUp},
	{CheckNetworks, checkNetworks},
	{CheckStorage, checkStorage},
	{CheckMemory, checkMemory},
	{CheckCPU, checkCPU},
	{CheckCPUModel, checkCPUModel},
	{CheckCacheMode, checkCacheMode},
	{CheckAffinity, checkAffinity},
}

// CheckNames returns every check's name in the order they run (metrics
// create a refusal counter for each up front).
func CheckNames() []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.name
	}
	return out
}

// checkFor runs the checks of moving the VM with key vm to dest.
func checkFor(st *fsm.State, vm, dest, own string) []CheckResult {
	c := &checkCtx{st: st, vmKey: vm, vmName: vm, vm: st.VMs[vm], dstName: dest, dst: st.Hosts[dest], own: own}
	if c.vm != nil {
		c.vmName = c.vm.Name
		c.srcName = c.vm.Host
		c.src = st.Hosts[c.vm.Host]
	}
	out := make([]CheckResult, len(checks))
	for i, ch := range checks {
		ok, msg := ch.run(c)
		out[i] = CheckResult{Name: ch.name, OK: ok, Message: msg}
	}
	return out
}

// missing explains why a check cannot look at its inputs, or returns "".
func (c *checkCtx) missing(vm, src, dst bool) string {
	switch {
	case vm && c.vm == nil:
		return fmt.Sprintf("not checked: vm %s does not exist", c.vmName)
	case src && c.src == nil:
		return fmt.Sprintf("not checked: source host %q is unknown", c.srcName)
	case dst && c.dst == nil:
		return fmt.Sprintf("not checked: destination host %q is unknown", c.dstName)
	}
	return ""
}
