package node

import (
	"time"
)

// Stop ends this meshd for a restart or an upgrade (meshd's SIGTERM): the
// host's VMs keep running on its hypervisor and the host stays a member of
// the mesh. Unlike Leave, nothing drains and gossip is not told the host
// leaves: peers see it fail for the time of the restart, and it comes back
// from its data dir as the same member, reporting the same VMs. A leader
// hands leadership to another voter first, so the mesh does not wait for an
// election timeout. Local migration jobs end as Kill ends them (the VM
// stays on its source).
func (n *Node) Stop() {
	if n.IsLeader() {
		f := n.raft.LeadershipTransfer()
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err := <-done:
			if err != nil {
				n.log.Warn("leadership transfer before stopping", "err", err)
			}
		case <-time.After(5 * time.Second):
			n.log.Warn("leadership transfer before stopping: no answer in 5s")
		}
	}
	n.Kill()
	n.log.Info("meshd stopped: the host's VMs keep running and the host stays in the mesh; drain it with meshctl drain or meshctl leave")
}
