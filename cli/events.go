package cli

import (
	"fmt"
	"io"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// EventsCommand prints the replicated event log: who did what, when.
var EventsCommand = &ucli.Command{
	Name:  "events",
	Usage: "show the event log (migrations, drains, host states, alarms, leaders) with who asked; --follow streams it",
	Flags: []ucli.Flag{
		&ucli.StringFlag{Name: "host", Usage: "only events about this host"},
		&ucli.StringFlag{Name: "vm", Usage: "only events about this VM (name or UUID)"},
		&ucli.IntFlag{Name: "n", Value: 50, Usage: "how many of the latest events to show first"},
		&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing events as they happen (Ctrl-C ends)"},
		outputFlag, jsonFlag,
	},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 0 {
			return usage(c, "no arguments")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		q := api.EventQuery{Host: c.String("host"), VM: c.String("vm"), Limit: 2000}
		page, err := cl.Events(c.Context, q)
		if err != nil {
			return err
		}
		evs := page.Events
		if n := c.Int("n"); n >= 0 && len(evs) > n {
			evs = evs[len(evs)-n:]
		}
		f, err := format(c)
		if err != nil {
			return err
		}
		if !c.Bool("follow") {
			if ok, err := printed(c, evs); ok || err != nil {
				return err
			}
		} else if f == formatYAML {
			return ucli.Exit("error: --follow streams one JSON object per line: use -o json (or --json)", exitUsage)
		}
		printEvents(c, evs)
		if !c.Bool("follow") {
			return nil
		}
		q.After, q.Wait, q.Limit = page.Next, 30*time.Second, 0
		for {
			page, err := cl.Events(c.Context, q)
			if err != nil {
				if c.Context.Err() != nil {
					return nil
				}
				return err
			}
			if page.Oldest > q.After+1 {
				fmt.Fprintf(c.App.ErrWriter, "(events %d to %d were dropped from the log before they could be read)\n", q.After+1, page.Oldest-1)
			}
			printEvents(c, page.Events)
			q.After = page.Next
		}
	},
}

func printEvents(c *ucli.Context, evs []api.Event) {
	if f, _ := format(c); f == formatJSON {
		enc := newNDJSON(c.App.Writer)
		for _, e := range evs {
			_ = enc.emit(e)
		}
		return
	}
	writeEvents(c.App.Writer, evs)
}

// writeEvents prints one line an event: time, number, kind, actor, what.
func writeEvents(w io.Writer, evs []api.Event) {
	for _, e := range evs {
		fmt.Fprintf(w, "%s  #%-5d %-26s %-16s %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Seq, e.Kind, dash(e.Actor), e.Message)
	}
}
