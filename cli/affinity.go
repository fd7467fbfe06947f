package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// AffinityCommand manages the affinity rules placement, migrate and drain
// obey. A hard rule refuses a move that breaks it (the "affinity" check);
// a soft one makes placement prefer hosts that keep it.
var AffinityCommand = &ucli.Command{
	Name:  "affinity",
	Usage: "create, list and delete affinity rules (VM-VM together/apart, VM-host must/prefer/avoid)",
	Subcommands: []*ucli.Command{
		{Name: "create", ArgsUsage: "NAME",
			Usage: "add a rule: --vms a,b with --together or --apart; or --vms a --hosts h1,h2 with --must, --prefer or --avoid",
			Description: "Kinds: --together (the VMs run on one host), --apart (on different hosts), --must (only on\n" +
				"the hosts), --prefer (on the hosts if it can), --avoid (never on the hosts). --must, --together,\n" +
				"--apart and --avoid are hard unless --soft is given; --prefer is soft unless --hard is given.",
			Flags: []ucli.Flag{
				&ucli.StringSliceFlag{Name: "vms", Usage: "VMs (names or UUIDs), comma-separated"},
				&ucli.StringSliceFlag{Name: "hosts", Usage: "hosts of a --must, --prefer or --avoid rule"},
				&ucli.BoolFlag{Name: "together"}, &ucli.BoolFlag{Name: "apart"},
				&ucli.BoolFlag{Name: "must"}, &ucli.BoolFlag{Name: "prefer"}, &ucli.BoolFlag{Name: "avoid"},
				&ucli.BoolFlag{Name: "hard", Usage: "refuse any move that breaks the rule"},
				&ucli.BoolFlag{Name: "soft", Usage: "only weigh placement"},
				outputFlag, jsonFlag,
			},
			Action: affinityCreate},
		{Name: "list", Usage: "every rule", Flags: outputFlags, Action: affinityList},
		{Name: "delete", ArgsUsage: "NAME", Usage: "remove a rule",
			Action: func(c *ucli.Context) error {
				if c.NArg() != 1 {
					return usage(c, "one rule name")
				}
				cl, err := newClient(c)
				if err != nil {
					return err
				}
				if err := cl.DeleteAffinity(c.Context, c.Args().First()); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "affinity rule %s deleted\n", c.Args().First())
				return nil
			}},
	},
}

func affinityCreate(c *ucli.Context) error {
	if c.NArg() != 1 {
		return usage(c, "one rule name")
	}
	var kinds []string
	for flag, kind := range map[string]string{"together": api.AffinityTogether, "apart": api.AffinityApart,
		"must": api.AffinityHostMust, "prefer": api.AffinityHostPrefer, "avoid": api.AffinityHostAvoid} {
		if c.Bool(flag) {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) != 1 {
		return usage(c, "exactly one of --together, --apart, --must, --prefer, --avoid")
	}
	if c.Bool("hard") && c.Bool("soft") {
		return usage(c, "--hard or --soft, not both")
	}
	req := api.AffinityRequest{Name: c.Args().First(), Kind: kinds[0], VMs: splitList(c.StringSlice("vms")),
		Hosts: splitList(c.StringSlice("hosts")), Hard: kinds[0] != api.AffinityHostPrefer}
	switch {
	case c.Bool("hard"):
		req.Hard = true
	case c.Bool("soft"):
		req.Hard = false
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	r, err := cl.CreateAffinity(c.Context, req)
	if err != nil {
		return err
	}
	if ok, err := printed(c, r); ok || err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "affinity rule %s created: %s %s, vms %s%s\n", r.Name, strength(r.Hard), r.Kind,
		strings.Join(r.VMNames, ","), hostsPart(r.Hosts))
	return nil
}

func affinityList(c *ucli.Context) error {
	if c.NArg() != 0 {
		return usage(c, "no arguments")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	rs, err := cl.Affinity(c.Context)
	if err != nil {
		return err
	}
	if ok, err := printed(c, rs); ok || err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tKIND\tSTRENGTH\tVMS\tHOSTS\tBY")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, strength(r.Hard), strings.Join(r.VMNames, ","),
			dash(strings.Join(r.Hosts, ",")), dash(r.By))
	}
	return w.Flush()
}

// splitList accepts repeated flags and comma-separated values alike.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func strength(hard bool) string {
	if hard {
		return "hard"
	}
	return "soft"
}

func hostsPart(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return ", hosts " + strings.Join(hosts, ",")
}
