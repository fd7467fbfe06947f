package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
)

// HostsCommand lists the hosts with their gossiped facts and Raft role.
var HostsCommand = &ucli.Command{
	Name:  "hosts",
	Usage: "list hosts: state, cluster, CPU, free/total memory and CPUs, networks, storage, raft role",
	Flags: outputFlags,
	Action: func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		hosts, err := cl.Hosts(c.Context)
		if err != nil {
			return err
		}
		if ok, err := printed(c, hosts); ok || err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tCLUSTER\tSTATE\tROLE\tCPU\tMEM FREE/TOTAL\tCPUS FREE/TOTAL\tVMS\tNETWORKS\tSTORAGE\tMIGRATION ADDR")
		for _, h := range hosts {
			var nets []string
			for _, n := range h.Networks {
				if n.VLAN != 0 {
					nets = append(nets, fmt.Sprintf("%s.%d", n.Name, n.VLAN))
				} else {
					nets = append(nets, n.Name)
				}
			}
			state := string(h.State)
			if h.StateReason != "" {
				state += " (" + h.StateReason + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s %s\t%d/%d MiB\t%d/%d\t%d\t%s\t%s\t%s\n",
				h.Name, h.Cluster, state, h.RaftRole, h.Arch, h.CPUModel, h.MemFreeMiB, h.MemTotalMiB,
				h.CPUsFree, h.CPUs, h.VMs, dash(strings.Join(nets, ",")), dash(strings.Join(h.StorageDomains, ",")), h.MigrationAddr)
		}
		return w.Flush()
	},
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
