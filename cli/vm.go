package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// VMCommand changes one VM's settings, kept in the mesh's replicated
// state: `meshctl vm set vm7 --migratable=false` pins vm7 to its host.
var VMCommand = &ucli.Command{
	Name:  "vm",
	Usage: "change one VM's settings",
	Subcommands: []*ucli.Command{
		{Name: "set", Usage: "set a VM's settings: --migratable=false pins it to its host; --policy and --bandwidth are its own, for migrations asked without theirs (drains, balancing)",
			ArgsUsage: "VM", BashComplete: completeVMs,
			Flags: []ucli.Flag{
				&ucli.BoolFlag{Name: "migratable", Usage: "false: placement, migrate and drain leave the VM where it is"},
				&ucli.StringFlag{Name: "policy", Usage: "the VM's convergence policy (\"\": the cluster's)"},
				&ucli.Uint64Flag{Name: "bandwidth", Usage: "the VM's bandwidth cap in MiB/s (0: the cluster's)"},
			},
			Action: func(c *ucli.Context) error {
				if c.NArg() != 1 {
					return usage(c, "one VM (name or UUID)")
				}
				var req api.VMSettingsRequest
				if c.IsSet("migratable") {
					m := c.Bool("migratable")
					req.Migratable = &m
				}
				if c.IsSet("policy") {
					p := c.String("policy")
					req.Policy = &p
				}
				if c.IsSet("bandwidth") {
					b := c.Uint64("bandwidth")
					req.BandwidthMiB = &b
				}
				if req.Migratable == nil && req.Policy == nil && req.BandwidthMiB == nil {
					return usage(c, "a setting to change: --migratable=true|false, --policy NAME, --bandwidth MIB")
				}
				cl, err := newClient(c)
				if err != nil {
					return err
				}
				if err := cl.SetVM(c.Context, c.Args().First(), req); err != nil {
					return err
				}
				var what []string
				if req.Migratable != nil {
					what = append(what, map[bool]string{true: "migratable", false: "not migratable: it stays on its host"}[*req.Migratable])
				}
				if req.Policy != nil {
					what = append(what, "policy "+orCluster(*req.Policy))
				}
				if req.BandwidthMiB != nil {
					bw := "the cluster's"
					if *req.BandwidthMiB > 0 {
						bw = fmt.Sprintf("%d MiB/s", *req.BandwidthMiB)
					}
					what = append(what, "bandwidth "+bw)
				}
				fmt.Fprintf(c.App.Writer, "vm %s: %s\n", c.Args().First(), strings.Join(what, "; "))
				return nil
			}},
	},
}

// orCluster names a VM setting, or the cluster's when it is unset.
func orCluster(v string) string {
	if v == "" {
		return "the cluster's"
	}
	return v
}
