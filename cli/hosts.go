package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/hostmesh/hostmesh/api"
	ucli "github.com/urfave/cli/v2"
)

// HostsCommand lists the hosts with their gossiped facts and Raft role.
var HostsCommand = &ucli.Command{
	Name:  "hosts",
	Usage: "list hosts: state, cluster, CPU, free/total memory and CPUs, networks, storage, raft role",
	Flags: outputFlags,
	Action: listing((*api.Client).Hosts, func(w io.Writer, hosts []api.HostView) {
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
	}),
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
