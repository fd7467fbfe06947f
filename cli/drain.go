package cli

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// DrainCommand moves every VM off a host and puts it in maintenance.
var DrainCommand = &ucli.Command{
	Name:         "drain",
	Usage:        "put a host in maintenance: migrate all its VMs away live (--cancel to stop)",
	ArgsUsage:    "HOST",
	BashComplete: completeHosts,
	Flags: []ucli.Flag{
		&ucli.BoolFlag{Name: "wait", Usage: "show each VM's progress until the drain ends"},
		&ucli.BoolFlag{Name: "cancel", Usage: "stop queueing and return the host to Up"},
		&ucli.StringFlag{Name: "policy", Usage: "convergence policy for the drain's migrations"},
		&ucli.BoolFlag{Name: "dry-run", Usage: "print the plan (each VM's destination and predicted time, the VMs that cannot move) and change nothing"},
		outputFlag, jsonFlag,
	},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one host name")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		host := c.Args().First()
		if c.Bool("dry-run") {
			return printDrainPlan(c, cl, host)
		}
		if c.Bool("cancel") {
			if err := cl.CancelDrain(c.Context, host); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "drain of %s cancelled; %s is Up\n", host, host)
			return nil
		}
		f, err := format(c)
		if err != nil {
			return err
		}
		if c.Bool("wait") && f == formatYAML {
			return ucli.Exit("error: --wait streams one JSON object per line: use -o json (or --json)", exitUsage)
		}
		resp, err := cl.Drain(c.Context, host, api.DrainRequest{Policy: c.String("policy")})
		if err != nil {
			return err
		}
		if !c.Bool("wait") {
			if ok, err := printed(c, resp); ok || err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "draining %s: %d migrations queued\n", host, len(resp.Migrations))
			return nil
		}
		// With --wait -o json, stdout carries NDJSON only; people's lines
		// go to stderr.
		dw := drainWatch{text: c.App.Writer, host: host}
		if f == formatJSON {
			dw.text, dw.events = c.App.ErrWriter, newNDJSON(c.App.Writer)
			if err := dw.events.emit(drainEvent{Event: "queued", Host: host, Migrations: resp.Migrations}); err != nil {
				return err
			}
		}
		fmt.Fprintf(dw.text, "draining %s: %d migrations queued\n", host, len(resp.Migrations))
		return dw.wait(c, cl)
	},
}

// drainEvent is one line of `drain --wait -o json`: "queued" once, a
// "migration" event as each of the drain's migrations ends, "end" last
// with the drain as it ended (its moved and unmovable VMs).
type drainEvent struct {
	Event      string         `json:"event"`
	Host       string         `json:"host"`
	Migrations []string       `json:"migrations,omitempty"`
	Migration  *api.Migration `json:"migration,omitempty"`
	Drain      *api.Drain     `json:"drain,omitempty"`
}

// drainWatch follows one drain: text for people, events for scripts.
type drainWatch struct {
	text   io.Writer
	events *ndjson
	host   string
}

// wait prints one line per VM as its migration ends, then the report.
func (dw drainWatch) wait(c *ucli.Context, cl *api.Client) error {
	host := dw.host
	start := time.Now()
	seen := map[string]bool{}
	// A short gap between blocking reads: while migrations run, their
	// progress samples wake the reads every few hundred ms, and the last
	// two of a drain end a few ms apart (equal shares), so the drain's
	// end often committed within the default 200 ms of the read before
	// it and waited out the rest of that gap before --wait returned.
	w := api.Watcher{Gap: drainWatchGap}
	lastETA, etaAt := "", time.Time{}
	for {
		q, err := w.Next(c.Context)
		if err != nil {
			return err
		}
		d, meta, err := cl.DrainStatus(c.Context, host, q)
		if err != nil {
			return err
		}
		w.Saw(meta)
		ms, err := cl.Migrations(c.Context)
		if err != nil {
			return err
		}
		ended := false
		for _, m := range ms {
			if m.Source != host || m.CreatedAt.Before(d.CreatedAt) || !m.State.Final() || seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			ended = true
			if dw.events != nil {
				if err := dw.events.emit(drainEvent{Event: "migration", Host: host, Migration: &m}); err != nil {
					return err
				}
			}
			line := fmt.Sprintf("  %-12s %-9s → %-8s", m.VM, m.State, dash(m.Dest))
			if m.State == api.MigSucceeded {
				line += fmt.Sprintf(" in %s, downtime %d ms", m.EndedAt.Sub(m.StartedAt).Round(time.Millisecond), m.DowntimeMs)
			} else {
				line += " " + m.Reason
			}
			fmt.Fprintln(dw.text, line)
		}
		if d.State != api.DrainActive {
			if dw.events != nil {
				if err := dw.events.emit(drainEvent{Event: "end", Host: host, Drain: &d}); err != nil {
					return err
				}
			}
			return drainReport(dw.text, host, d, time.Since(start))
		}
		// The plan costs the host that answers a scheduler run per move:
		// at most one every etaEvery.
		if (ended || lastETA == "") && time.Since(etaAt) >= etaEvery {
			etaAt = time.Now()
			if eta := drainETA(c, cl, host, d); eta != "" && eta != lastETA {
				fmt.Fprintln(dw.text, eta)
				lastETA = eta
			}
		}
	}
}

// drainWatchGap is the least time between drain --wait's blocking reads
// of one drain (two small reads each).
const drainWatchGap = 20 * time.Millisecond

// etaEvery is how often drain --wait asks for the running drain's plan.
const etaEvery = 5 * time.Second

// drainETA is the "ETA" line of a running drain: its plan from where it
// is (the moves left, the running ones at their last sample) and the
// prediction it started with. "" when no plan can be had: the ETA is a
// help, the drain goes on without it.
func drainETA(c *ucli.Context, cl *api.Client, host string, d api.Drain) string {
	p, err := cl.DrainPlan(c.Context, host)
	if err != nil {
		return ""
	}
	line := fmt.Sprintf("  ETA %s: %d VMs to move", secs(p.TotalSeconds), len(p.Moves))
	if d.PredictedSeconds > 0 {
		line += fmt.Sprintf(" (predicted %s at the start, %s ago)", secs(d.PredictedSeconds), time.Since(d.CreatedAt).Round(100*time.Millisecond))
	}
	return line
}

func drainReport(out io.Writer, host string, d api.Drain, took time.Duration) error {
	by := ""
	if d.RequestedBy != "" {
		by = " (asked by " + d.RequestedBy + ")"
	}
	fmt.Fprintf(out, "drain of %s%s %s after %s: %d VMs moved, %d could not move\n",
		host, by, d.State, took.Round(time.Millisecond), len(d.Moved), len(d.Unmovable))
	if d.PredictedSeconds > 0 && d.State == api.DrainDone {
		fmt.Fprintf(out, "predicted %s, took %.1fs: error %+.1f%%\n", secs(d.PredictedSeconds),
			d.EndedAt.Sub(d.CreatedAt).Seconds(), d.ErrorPercent)
	}
	if len(d.Unmovable) == 0 {
		if d.State == api.DrainDone {
			fmt.Fprintf(out, "%s is in Maintenance\n", host)
		}
		return nil
	}
	names := make([]string, 0, len(d.Unmovable))
	for vm := range d.Unmovable {
		names = append(names, vm)
	}
	sort.Strings(names)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VM\tWHY IT DID NOT MOVE")
	for _, vm := range names {
		fmt.Fprintf(w, "%s\t%s\n", vm, d.Unmovable[vm])
	}
	_ = w.Flush()
	return ucli.Exit(fmt.Sprintf("%s stays PreparingForMaintenance: move or stop the VMs above, then drain again or activate it", host), exitFailed)
}

// ActivateCommand brings a host out of maintenance.
var ActivateCommand = &ucli.Command{
	Name:         "activate",
	Usage:        "bring a host out of maintenance (--return moves its drained VMs back)",
	ArgsUsage:    "HOST",
	BashComplete: completeHosts,
	Flags:        []ucli.Flag{&ucli.BoolFlag{Name: "return", Usage: "migrate the VMs the drain moved away back to this host"}},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one host name")
		}
		host := c.Args().First()
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		resp, err := cl.Activate(c.Context, host, api.ActivateRequest{Return: c.Bool("return")})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s is Up", host)
		if c.Bool("return") {
			fmt.Fprintf(c.App.Writer, "; %d migrations queued to bring its VMs back", len(resp.Migrations))
		}
		fmt.Fprintln(c.App.Writer)
		return nil
	},
}

// LeaveCommand drains the node addressed by --addr and takes it out of the mesh.
var LeaveCommand = &ucli.Command{
	Name:  "leave",
	Usage: "drain the host at --addr, then take it out of gossip and raft",
	Flags: []ucli.Flag{&ucli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "how long the drain may take"}},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments (it acts on the host at --addr)")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		rep, err := cl.Leave(c.Context, api.LeaveRequest{TimeoutSeconds: int(c.Duration("timeout").Seconds())})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s left the mesh after %d ms: drain %s, %d VMs moved\n", rep.Host, rep.DurationMs, rep.Drain, len(rep.Moved))
		if len(rep.Unmovable) > 0 {
			for vm, why := range rep.Unmovable {
				fmt.Fprintf(c.App.Writer, "  %s did not move: %s\n", vm, why)
			}
			return ucli.Exit(fmt.Sprintf("%d VMs are still on %s", len(rep.Unmovable), rep.Host), exitFailed)
		}
		return nil
	},
}
