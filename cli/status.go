package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// StatusCommand shows the Raft view of the node asked.
var StatusCommand = &ucli.Command{
	Name:  "status",
	Usage: "show the leader, voters, non-voters and raft indexes",
	Flags: []ucli.Flag{jsonFlag},
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
		if c.Bool("json") {
			return printJSON(c, st)
		}
		w := c.App.Writer
		fmt.Fprintf(w, "node:        %s (%s)\n", st.Self, st.RaftState)
		fmt.Fprintf(w, "leader:      %s\n", dash(st.Leader))
		fmt.Fprintf(w, "voters:      %s\n", dash(strings.Join(st.Voters, ", ")))
		fmt.Fprintf(w, "non-voters:  %s\n", dash(strings.Join(st.Nonvoters, ", ")))
		fmt.Fprintf(w, "last index:  %d (applied %d)\n", st.LastIndex, st.AppliedIndex)
		fmt.Fprintf(w, "hosts: %d  vms: %d  migrations queued: %d running: %d\n", st.Hosts, st.VMs, st.Queued, st.Running)
		return nil
	},
}
