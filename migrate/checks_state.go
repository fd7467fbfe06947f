// The checks on the VM's and the hosts' states: the VM exists, runs and
// is not already moving; the hosts differ, share a cluster and are Up.

package migrate

import (
	"fmt"

	"github.com/hostmesh/hostmesh/fsm"
)

func checkVMExists(c *checkCtx) (bool, string) {
	if c.vm == nil {
		return false, fmt.Sprintf("vm %s does not exist", c.vmName)
	}
	return true, fmt.Sprintf("vm %s runs on %s", c.vmName, c.srcName)
}

func checkVMRunning(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if c.vm.State != fsm.VMRunning {
		return false, fmt.Sprintf("vm %s is %s; only a running VM migrates live", c.vmName, c.vm.State)
	}
	return true, fmt.Sprintf("vm %s is running", c.vmName)
}

func checkNotMigrating(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if held := c.vm.Migration; held != "" && held != c.own {
		return false, fmt.Sprintf("vm %s is already held by migration %s", c.vmName, held)
	}
	return true, fmt.Sprintf("vm %s has no other migration", c.vmName)
}

// checkMigratable refuses a VM that may go nowhere: passthrough host
// devices, or an operator's pin (fsm.State.NotMigratable).
func checkMigratable(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if why := c.st.NotMigratable(c.vmKey); why != "" {
		return false, why
	}
	return true, fmt.Sprintf("vm %s has no host devices and is not pinned", c.vmName)
}

// checkSplitBrain refuses a VM that runs on two hosts at once: moving
// either copy could overwrite the other's disks.
func checkSplitBrain(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if a := c.st.SplitBrain(c.vmKey); a != nil {
		return false, a.Message
	}
	return true, fmt.Sprintf("vm %s runs on one host", c.vmName)
}

func checkDistinctHosts(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if c.srcName == c.dstName {
		return false, fmt.Sprintf("vm %s already runs on %s", c.vmName, c.dstName)
	}
	return true, fmt.Sprintf("%s -> %s", c.srcName, c.dstName)
}

func checkSameCluster(c *checkCtx) (bool, string) {
	if m := c.missing(true, true, true); m != "" {
		return false, m
	}
	if c.src.Cluster != c.dst.Cluster {
		return false, fmt.Sprintf("%s is in cluster %s, %s in cluster %s", c.srcName, c.src.Cluster, c.dstName, c.dst.Cluster)
	}
	return true, fmt.Sprintf("both in cluster %s", c.src.Cluster)
}

// hostState renders a host's state with its reason, if any.
func hostState(name string, h *fsm.Host) string {
	s := fmt.Sprintf("%s is %s", name, h.State)
	if h.StateReason != "" {
		s += " (" + h.StateReason + ")"
	}
	return s
}

// checkSourceUp accepts PreparingForMaintenance: that is the state of a host
// being drained, whose VMs must be able to leave.
func checkSourceUp(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	if c.src == nil {
		return false, fmt.Sprintf("source host %q is unknown", c.srcName)
	}
	switch c.src.State {
	case fsm.HostUp:
		return true, hostState(c.srcName, c.src)
	case fsm.HostPreparingForMaintenance:
		return true, hostState(c.srcName, c.src) + "; draining is allowed"
	}
	return false, hostState(c.srcName, c.src)
}

func checkDestUp(c *checkCtx) (bool, string) {
	if c.dst == nil {
		return false, fmt.Sprintf("destination host %q is unknown", c.dstName)
	}
	if c.dst.State != fsm.HostUp {
		return false, hostState(c.dstName, c.dst) + "; only an Up host receives VMs"
	}
	return true, hostState(c.dstName, c.dst)
}
