package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/hostmesh/hostmesh/api"
)

// MigrateCommand queues a live migration, or explains why it cannot run.
var MigrateCommand = &ucli.Command{
	Name:         "migrate",
	Usage:        "live-migrate a VM to the best host of its cluster (or --to HOST)",
	ArgsUsage:    "VM (name or UUID)",
	BashComplete: completeVMs,
	Flags: []ucli.Flag{
		&ucli.StringFlag{Name: "to", Usage: "destination host (default: placement chooses)"},
		&ucli.StringFlag{Name: "policy", Usage: "convergence policy: minimal-downtime, post-copy, suspend-workload, auto, precopy (default: the cluster's)"},
		&ucli.Uint64Flag{Name: "bandwidth", Usage: "cap in MiB/s (default: the cluster's)"},
		&ucli.IntFlag{Name: "parallel", Usage: "connections for the memory stream, 1 to 64 (default: the cluster's; a post-copy-capable job uses one)"},
		&ucli.BoolFlag{Name: "wait", Usage: "show progress until the migration ends; non-zero exit if it fails"},
		&ucli.BoolFlag{Name: "dry-run", Usage: "show every host's prerequisite checks and the predicted migration (the guest sampled for 1 s), queue nothing"},
		outputFlag, jsonFlag,
	},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one VM name or UUID")
		}
		f, err := format(c)
		if err != nil {
			return err
		}
		if c.Bool("wait") && f == formatYAML {
			return ucli.Exit("error: --wait streams one JSON object per line: use -o json (or --json)", exitUsage)
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		req := api.MigrateRequest{VM: c.Args().First(), To: c.String("to"), Policy: c.String("policy"),
			BandwidthMiB: c.Uint64("bandwidth"), Parallel: c.Int("parallel"), DryRun: c.Bool("dry-run")}
		if c.IsSet("parallel") && (req.Parallel < 1 || req.Parallel > 64) {
			return usage(c, "--parallel must be 1 to 64")
		}
		resp, err := cl.Migrate(c.Context, req)
		if err != nil {
			return refusal(c, err)
		}
		if req.DryRun {
			if ok, err := printed(c, resp.Candidates); ok || err != nil {
				return err
			}
			return printDryRun(c.App.Writer, req.VM, resp.Candidates)
		}
		if !c.Bool("wait") {
			if ok, err := printed(c, resp); ok || err != nil {
				return err
			}
		}
		// With --wait -o json, stdout carries NDJSON only; people's lines
		// go to stderr.
		text, events := c.App.Writer, (*ndjson)(nil)
		if f == formatJSON {
			text, events = c.App.ErrWriter, newNDJSON(c.App.Writer)
			if err := events.emit(migrateEvent{Event: "queued", ID: resp.ID, VM: req.VM, Placement: resp.Placement}); err != nil {
				return err
			}
		}
		fmt.Fprintf(text, "migration %s queued for %s", resp.ID, req.VM)
		if resp.Placement != "" {
			fmt.Fprintf(text, " (placement now: %s)", resp.Placement)
		}
		fmt.Fprintln(text)
		if !c.Bool("wait") {
			return nil
		}
		m, err := waitMigration(c.Context, cl, resp.ID, c.App.ErrWriter, events)
		if err != nil {
			return err
		}
		return reportEnd(text, events, m)
	},
}

// migrateEvent is one line of `migrate --wait -o json`: "queued" once,
// "progress" at every change the blocking reads see, "end" last with the
// migration as it ended (Succeeded, Failed or Cancelled).
type migrateEvent struct {
	Event     string         `json:"event"`
	ID        string         `json:"id"`
	VM        string         `json:"vm"`
	Placement string         `json:"placement,omitempty"`
	Migration *api.Migration `json:"migration,omitempty"`
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// refusal prints each failed prerequisite check on its own line.
func refusal(c *ucli.Context, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && len(ae.Checks) > 0 {
		fmt.Fprintln(c.App.ErrWriter, "migration refused:")
		for _, ch := range ae.Checks {
			fmt.Fprintf(c.App.ErrWriter, "  %-14s %s\n", ch.Name, ch.Message)
		}
	}
	return err
}

func printDryRun(w io.Writer, vm string, cands []api.Candidate) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "dry run for %s: %d candidate hosts\n", vm, len(cands))
	fmt.Fprintln(tw, "HOST\tRESULT\tSCORE\tCHECK\tOK\tDETAIL")
	for _, cand := range cands {
		res := "refused"
		if cand.OK {
			res = "passes"
		}
		for i, r := range cand.Results {
			host, rs, score := "", "", ""
			if i == 0 {
				host, rs, score = cand.Host, res, fmt.Sprintf("%.1f", cand.Score)
			}
			ok := "ok"
			if !r.OK {
				ok = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", host, rs, score, r.Name, ok, r.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, cand := range cands {
		if cand.Prediction != nil {
			return printPrediction(w, cand.Host, *cand.Prediction)
		}
	}
	return nil
}

// chosenBy says how a dry run's destination was chosen.
var chosenBy = map[string]string{"asked": "asked with --to", "placement": "placement's choice"}

// dataFrom says where a prediction's memory to send comes from.
var dataFrom = map[string]string{"last migration": "what its last migration's first pass sent",
	"hypervisor": "the memory the hypervisor holds for it", "memory": "all its memory: nothing better known"}

// printPrediction prints a dry run's prediction of the migration on its
// destination.
func printPrediction(w io.Writer, dest string, p api.DryRunPrediction) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "prediction to %s (%s), policy %s:\n", dest, chosenBy[p.Chosen], p.Policy)
	fmt.Fprintf(tw, "  memory to send\t%s in the first pass (%s), of %d MiB\n", mib(p.DataBytes), dataFrom[p.DataFrom], p.MemBytes>>20)
	if p.DirtySetBytes > 0 {
		fmt.Fprintf(tw, "  dirty set\t%s, what its last migration's second pass found dirty: bounds the later passes\n", mib(p.DirtySetBytes))
	}
	if p.Sampled {
		fmt.Fprintf(tw, "  dirty rate\t%.1f MiB/s, sampled on its host now\n", float64(p.DirtyRateBps)/(1<<20))
	} else {
		fmt.Fprintf(tw, "  dirty rate\tunknown: %s\n", dash(p.NotSampled))
	}
	if p.GrantedMiB == 0 {
		fmt.Fprintf(tw, "  bandwidth\tunlimited: no time predicted against it\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "  bandwidth\t%d MiB/s, as the scheduler would grant it now\n", p.GrantedMiB)
	conv := "no: the guest dirties memory too fast for pre-copy alone"
	switch {
	case !p.Sampled:
		conv = "unknown (no dirty rate)"
	case p.Converges:
		conv = fmt.Sprintf("yes, in %d passes", p.Passes)
	}
	fmt.Fprintf(tw, "  pre-copy converges\t%s\n", conv)
	setup := "setup unknown, not counted"
	if p.SetupMs > 0 {
		setup = fmt.Sprintf("its last setup of %s included", (time.Duration(p.SetupMs) * time.Millisecond).Round(100*time.Millisecond))
	}
	fmt.Fprintf(tw, "  predicted time\t%s as %s (%s)\n", (time.Duration(p.TotalMs) * time.Millisecond).Round(100*time.Millisecond), p.Choice, setup)
	fmt.Fprintf(tw, "  auto would pick\t%s\n", p.Choice)
	return tw.Flush()
}

// mib renders a byte count in MiB, to one decimal under 10 MiB.
func mib(b uint64) string {
	if b < 10<<20 {
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// predicted renders a migration's recorded prediction for the listing:
// the time, whether pre-copy converges, the mode auto picked.
func predicted(p *api.Prediction) string {
	if p == nil || p.TotalMs <= 0 {
		return "-"
	}
	conv := "no-conv"
	if p.Converges {
		conv = "conv"
	}
	return fmt.Sprintf("%s %s %s", (time.Duration(p.TotalMs) * time.Millisecond).Round(100*time.Millisecond), conv, p.Choice)
}

// waitMigration follows the migration with blocking reads (an answer as
// soon as the mesh's state moves, at most every 200 ms) and draws a
// progress bar until it ends.
func waitMigration(ctx context.Context, cl *api.Client, id string, out io.Writer, events *ndjson) (api.Migration, error) {
	// On a terminal the bar redraws in place; in a log or pipe it would
	// flood, so it prints a plain line per state change or every 5 seconds.
	tty := isTerminal(out)
	bar := progressbar.NewOptions(1000,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetVisibility(tty),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetDescription(id+" queued"),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
	)
	var lastState api.MigrationState
	var lastLine time.Time
	var w api.Watcher
	for {
		q, err := w.Next(ctx)
		if err != nil {
			return api.Migration{}, err
		}
		m, meta, err := cl.Migration(ctx, id, q)
		if err != nil {
			return m, err
		}
		w.Saw(meta)
		if events != nil && !m.State.Final() {
			if err := events.emit(migrateEvent{Event: "progress", ID: m.ID, VM: m.VM, Migration: &m}); err != nil {
				return m, err
			}
		}
		p := m.Progress
		desc := fmt.Sprintf("%s %s→%s %s", id, m.Source, dash(m.Dest), m.State)
		if m.State == api.MigRunning {
			desc = fmt.Sprintf("%s %s→%s %5.1f MiB/s, %d MiB left, iter %d, dirty %.1f MiB/s", id, m.Source, m.Dest,
				p.MiBps, p.RemainingBytes>>20, p.Iteration, float64(p.DirtyRateBps)/(1<<20))
			if p.ThrottlePercent > 0 {
				desc += fmt.Sprintf(", vCPUs throttled %d%%", p.ThrottlePercent)
			}
			if p.PostCopy {
				desc += " post-copy"
			}
		}
		bar.Describe(desc)
		_ = bar.Set(int(p.Percent * 10))
		if !tty && (m.State != lastState || time.Since(lastLine) >= 5*time.Second) {
			fmt.Fprintf(out, "%s %3.0f%%\n", desc, p.Percent)
			lastState, lastLine = m.State, time.Now()
		}
		if m.State.Final() {
			if m.State == api.MigSucceeded {
				_ = bar.Set(1000)
			}
			_ = bar.Finish()
			if tty {
				fmt.Fprintln(out)
			}
			return m, nil
		}
	}
}

// reportEnd prints the closing line (and, with -o json, the "end" event)
// and fails the command unless the migration succeeded.
func reportEnd(text io.Writer, events *ndjson, m api.Migration) error {
	if events != nil {
		if err := events.emit(migrateEvent{Event: "end", ID: m.ID, VM: m.VM, Migration: &m}); err != nil {
			return err
		}
	}
	if m.State == api.MigSucceeded {
		fmt.Fprintln(text, formatMoved(m))
		return nil
	}
	return ucli.Exit(fmt.Sprintf("%s: %s %s: %s (VM stays on %s)", m.ID, m.VM, m.State, m.Reason, m.Source), exitFailed)
}

func cancelMigration(c *ucli.Context, cl *api.Client, id string) error {
	if err := cl.CancelMigration(c.Context, id); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "cancel of %s requested\n", id)
	return nil
}

// CancelCommand cancels a queued or running migration.
var CancelCommand = &ucli.Command{
	Name:         "cancel",
	Usage:        "cancel a migration (a running one is aborted; the VM stays on its source)",
	ArgsUsage:    "MIGRATION-ID",
	BashComplete: completeMigrations,
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one migration ID")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		return cancelMigration(c, cl, c.Args().First())
	},
}

// MigrationsCommand lists the queue and the history.
var MigrationsCommand = &ucli.Command{
	Name:  "migrations",
	Usage: "list migrations: queue and history with state, hosts, progress, times, downtime, reason",
	Flags: outputFlags,
	Action: listing((*api.Client).Migrations, func(w io.Writer, ms []api.Migration) {
		fmt.Fprintln(w, "ID\tVM\tSTATE\tSOURCE\tDEST\tPOLICY\tMIB/S\tPROGRESS\tTIME\tPREDICTED\tDOWNTIME\tBY\tREASON")
		for _, m := range ms {
			took := "-"
			if !m.StartedAt.IsZero() && !m.EndedAt.IsZero() {
				took = m.EndedAt.Sub(m.StartedAt).Round(time.Millisecond).String()
			}
			down := "-"
			if m.DowntimeMs > 0 {
				down = fmt.Sprintf("%d ms", m.DowntimeMs)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.0f%%\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.VM, m.State, m.Source, dash(m.Dest),
				m.Policy, m.GrantedMiB, m.Progress.Percent, took, predicted(m.Progress.Prediction), down, dash(m.RequestedBy), dash(m.Reason))
		}
	}),
}
