package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/hostmesh/hostmesh/api"
	ucli "github.com/urfave/cli/v2"
)

// MembersCommand lists the hosts gossip sees from the meshd asked, as
// `consul members`: liveness by gossip, which Raft's view (raft peers) and
// the replicated host list (hosts) may not share yet.
var MembersCommand = &ucli.Command{
	Name:  "members",
	Usage: "list the hosts gossip sees from the meshd at --addr: address, alive/dead/left, cluster, version, in a mesh",
	Flags: outputFlags,
	Action: listing((*api.Client).Members, func(w io.Writer, ms []api.Member) {
		fmt.Fprintln(w, "NAME\tADDRESS\tSTATUS\tCLUSTER\tHYPERVISOR\tVERSION\tIN MESH\tNETWORKS\tSTORAGE")
		for _, m := range ms {
			in := "no"
			if m.InMesh {
				in = "yes"
			}
			var nets []string
			for _, n := range m.Networks {
				if n.VLAN != 0 {
					nets = append(nets, fmt.Sprintf("%s.%d", n.Name, n.VLAN))
				} else {
					nets = append(nets, n.Name)
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, m.Status, dash(m.Cluster), dash(m.Hypervisor),
				dash(m.Version), in, dash(strings.Join(nets, ",")), dash(strings.Join(m.StorageDomains, ",")))
		}
	}),
}

// RaftCommand shows the Raft configuration, as `consul operator raft
// list-peers`.
var RaftCommand = &ucli.Command{
	Name:  "raft",
	Usage: "the Raft view of the meshd at --addr",
	Subcommands: []*ucli.Command{{
		Name:    "peers",
		Aliases: []string{"list-peers"},
		Usage:   "list the Raft servers: ID, address, voter or not, leader",
		Flags:   outputFlags,
		Action: listing((*api.Client).RaftPeers, func(w io.Writer, ps []api.RaftPeer) {
			fmt.Fprintln(w, "NODE\tADDRESS\tSTATE\tVOTER")
			for _, p := range ps {
				state, voter := "follower", "true"
				if p.Leader {
					state = "leader"
				}
				if p.Suffrage != "voter" {
					voter = "false"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.ID, p.Address, state, voter)
			}
		}),
	}},
}

// ClustersCommand lists the clusters the mesh knows with their settings.
var ClustersCommand = &ucli.Command{
	Name:  "clusters",
	Usage: "list clusters: slots, bandwidth, default policy, migration transport",
	Flags: outputFlags,
	Action: listing((*api.Client).Clusters, func(w io.Writer, cs []api.Cluster) {
		fmt.Fprintln(w, "NAME\tOUT/HOST\tIN/HOST\tCONCURRENT\tBANDWIDTH\tNETWORK\tPOLICY\tTRANSPORT")
		for _, x := range cs {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s %d MiB/s\t%d MiB/s\t%s\t%s\n", x.Name, x.MaxOutgoing, x.MaxIncoming, x.MaxConcurrent,
				x.BandwidthMode, x.BandwidthMiB, x.MigrationNetMiB, x.Policy, transportOf(x))
		}
	}),
}
