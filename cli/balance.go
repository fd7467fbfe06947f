package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
)

// BalanceCommand shows what the leader's next balancing pass of a
// cluster would do. Balancing itself runs on its own once a cluster's
// balance is on (meshctl cluster CLUSTER --balance memory|cpu).
var BalanceCommand = &ucli.Command{
	Name:      "balance",
	Usage:     "show the next automatic balancing pass of a cluster (--dry-run): each host's load, the moves, the VMs kept and why",
	ArgsUsage: "CLUSTER",
	Flags: []ucli.Flag{
		&ucli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing (required: the leader balances by itself)"},
		outputFlag, jsonFlag,
	},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one cluster name")
		}
		if !c.Bool("dry-run") {
			return usage(c, "--dry-run: the leader balances by itself once `meshctl cluster CLUSTER --balance memory|cpu` turned it on")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		p, err := cl.BalancePlan(c.Context, c.Args().First())
		if err != nil {
			return err
		}
		if ok, err := printed(c, p); ok || err != nil {
			return err
		}
		out := c.App.Writer
		fmt.Fprintf(out, "balance plan of %s (%s, threshold %d points): spread %.1f → %.1f points, %d moves (budget %d)",
			p.Cluster, p.Mode, p.Threshold, p.Spread, p.After, len(p.Moves), p.Budget)
		if p.Idle != "" {
			fmt.Fprintf(out, "; %s", p.Idle)
		}
		fmt.Fprintln(out)
		hosts := make([]string, 0, len(p.Load))
		for h := range p.Load {
			hosts = append(hosts, h)
		}
		sort.Slice(hosts, func(i, j int) bool { return p.Load[hosts[i]] > p.Load[hosts[j]] })
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		if len(hosts) > 0 {
			fmt.Fprintln(w, "HOST\tLOAD")
			for _, h := range hosts {
				fmt.Fprintf(w, "%s\t%.1f%%\n", h, p.Load[h])
			}
		}
		if len(p.Moves) > 0 {
			fmt.Fprintln(w, "#\tVM\tFROM\tTO\tWHY")
			for i, m := range p.Moves {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", i+1, m.VM, m.From, m.To, m.Reason)
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for _, r := range p.Refused {
			fmt.Fprintf(out, "KEPT %s on %s: %s\n", r.VM, r.Host, r.Reason)
		}
		return nil
	},
}
