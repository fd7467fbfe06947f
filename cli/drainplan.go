package cli

import (
	"fmt"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// printDrainPlan prints what `meshctl drain HOST` would do: the moves in
// the order they would start, each with its destination, why, and its
// predicted time; the VMs that would stay, each with what blocks it; the
// predicted total next to the migration network's limit.
func printDrainPlan(c *ucli.Context, cl *api.Client, host string) error {
	p, err := cl.DrainPlan(c.Context, host)
	if err != nil {
		return err
	}
	if ok, err := printed(c, p); ok || err != nil {
		return err
	}
	out := c.App.Writer
	fmt.Fprintf(out, "drain plan of %s: %d VMs move, %d cannot; predicted %s", p.Host, len(p.Moves), len(p.Unmovable), secs(p.TotalSeconds))
	if p.NetMiB > 0 {
		fmt.Fprintf(out, " (limit %s: the moved memory at the migration network's %d MiB/s)", secs(p.LimitSeconds), p.NetMiB)
	}
	fmt.Fprintln(out)
	if len(p.Moves) > 0 {
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "#\tVM\tMEMORY\tDIRTY\tDEST\tSTART\tTIME\tBANDWIDTH\tREASON")
		for i, m := range p.Moves {
			bw := "unlimited"
			if m.BandwidthMiB > 0 {
				bw = fmt.Sprintf("%d MiB/s", m.BandwidthMiB)
			}
			dirty := "unsampled"
			if m.DirtyMiB > 0 {
				dirty = fmt.Sprintf("%.1f MiB/s", m.DirtyMiB)
			}
			start := "+" + secs(m.StartSeconds)
			if m.Running {
				start = "running"
			}
			fmt.Fprintf(w, "%d\t%s\t%d MiB\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, m.VM, m.MemoryMiB, dirty, m.Dest, start,
				secs(m.Seconds), bw, m.Reason)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	for _, u := range p.Unmovable {
		fmt.Fprintf(out, "CANNOT MOVE %s: %s\n", u.VM, u.Reason)
	}
	return nil
}

func secs(s float64) string { return fmt.Sprintf("%.1fs", s) }
