package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// VMsCommand lists the VMs and the host that runs each, with the alarms
// that stand for them.
var VMsCommand = &ucli.Command{
	Name:  "vms",
	Usage: "list VMs: name, UUID, host, state, memory, vCPUs, NICs, disks, migration, alarms",
	Flags: append([]ucli.Flag{&ucli.StringFlag{Name: "host", Usage: "only VMs on this host"}}, outputFlags...),
	Action: func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		vms, err := cl.VMs(c.Context)
		if err != nil {
			return err
		}
		if h := c.String("host"); h != "" {
			var keep []api.VM
			for _, v := range vms {
				if v.Host == h {
					keep = append(keep, v)
				}
			}
			vms = keep
		}
		if ok, err := printed(c, vms); ok || err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tUUID\tHOST\tSTATE\tMEMORY\tVCPUS\tNICS\tDISKS\tMIGRATION\tALARM")
		var alarms []*api.Alarm
		for _, v := range vms {
			var nics, disks []string
			for _, n := range v.NICs {
				if n.VLAN != 0 {
					nics = append(nics, fmt.Sprintf("%s.%d", n.Network, n.VLAN))
				} else {
					nics = append(nics, n.Network)
				}
			}
			for _, d := range v.Disks {
				where := d.StorageDomain
				if where == "" {
					where = "local"
				}
				disks = append(disks, fmt.Sprintf("%s:%s/%s", d.Target, where, d.Cache))
			}
			alarm := ""
			if v.Alarm != nil {
				alarm = v.Alarm.Kind
				alarms = append(alarms, v.Alarm)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d MiB\t%d\t%s\t%s\t%s\t%s\n", v.Name, dash(v.UUID), v.Host, v.State, v.MemoryMiB, v.VCPUs,
				dash(strings.Join(nics, ",")), dash(strings.Join(disks, ",")), dash(v.Migration), dash(alarm))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for _, v := range vms {
			if v.NotMigratable != "" {
				fmt.Fprintf(c.App.Writer, "NOT MIGRATABLE %s: %s\n", v.Name, v.NotMigratable)
			}
		}
		for _, a := range alarms {
			fmt.Fprintf(c.App.Writer, "ALARM %s since %s: %s\n", a.Kind, a.Since.Format(time.RFC3339), a.Message)
		}
		return nil
	},
}
