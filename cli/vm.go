package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// VMCommand changes one VM's settings, kept in the mesh's replicated
// state: `meshctl vm set vm7 --migratable=false` pins vm7 to its host.
var VMCommand = &ucli.Command{
	Name:  "vm",
	Usage: "change one VM's settings",
	Subcommands: []*ucli.Command{
		{Name: "set", Usage: "set a VM's settings (--migratable=false pins it to its host)", ArgsUsage: "VM", BashComplete: completeVMs,
			Flags: []ucli.Flag{&ucli.BoolFlag{Name: "migratable", Usage: "false: placement, migrate and drain leave the VM where it is"}},
			Action: func(c *ucli.Context) error {
				if c.NArg() != 1 {
					return usage(c, "one VM (name or UUID)")
				}
				if !c.IsSet("migratable") {
					return usage(c, "a setting to change: --migratable=true|false")
				}
				cl, err := newClient(c)
				if err != nil {
					return err
				}
				m := c.Bool("migratable")
				if err := cl.SetVM(c.Context, c.Args().First(), api.VMSettingsRequest{Migratable: &m}); err != nil {
					return err
				}
				what := "migratable"
				if !m {
					what = "not migratable: it stays on its host"
				}
				fmt.Fprintf(c.App.Writer, "vm %s: %s\n", c.Args().First(), what)
				return nil
			}},
	},
}
