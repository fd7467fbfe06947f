package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// StatusCommand shows the Raft view of the node asked.
var StatusCommand = &ucli.Command{
	Name:  "status",
	Usage: "show the leader, voters, non-voters and raft indexes",
	Flags: outputFlags,
	Action: func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		st, err := cl.Status(c.Context)
		if err != nil {
			return err
		}
		if ok, err := printed(c, st); ok || err != nil {
			if err != nil {
				return err
			}
			return notInMesh(st)
		}
		w := c.App.Writer
		fmt.Fprintf(w, "node:        %s (%s)\n", st.Self, st.RaftState)
		fmt.Fprintf(w, "leader:      %s\n", dash(st.Leader))
		fmt.Fprintf(w, "voters:      %s\n", dash(strings.Join(st.Voters, ", ")))
		fmt.Fprintf(w, "non-voters:  %s\n", dash(strings.Join(st.Nonvoters, ", ")))
		fmt.Fprintf(w, "last index:  %d (applied %d)\n", st.LastIndex, st.AppliedIndex)
		fmt.Fprintf(w, "hosts: %d  vms: %d  migrations queued: %d running: %d\n", st.Hosts, st.VMs, st.Queued, st.Running)
		fmt.Fprintf(w, "gossip:      %d member(s) alive\n", st.GossipMembers)
		return notInMesh(st)
	},
}

// notInMesh turns a status without a leader into exit 3 with a loud reason:
// the host answers, but it is not part of a working mesh (alone in gossip,
// a wrong gossip key, or no quorum).
func notInMesh(st api.Status) error {
	if st.Leader != "" {
		return nil
	}
	msg := fmt.Sprintf("error: %s is not in a mesh: no leader", st.Self)
	if st.GossipMembers <= 1 {
		msg += "; gossip shows no other host"
	} else {
		msg += fmt.Sprintf("; gossip shows %d hosts but Raft elected none (no quorum?)", st.GossipMembers)
	}
	if st.JoinError != "" {
		msg += "; last join: " + st.JoinError
	}
	return ucli.Exit(msg, exitUnreachable)
}
