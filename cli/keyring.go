package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// KeyringCommand rotates the gossip key online, as `consul keyring` does:
// install the new key on every host, use it, then remove the old one. Any
// meshd fans each step out to every alive member and reports host by host.
var KeyringCommand = &ucli.Command{
	Name:  "keyring",
	Usage: "list, install, use and remove gossip keys on every host (online rotation)",
	Description: "A rotation: meshctl keyring install NEW; meshctl keyring use NEW; meshctl keyring remove OLD.\n" +
		"Keys are listed by fingerprint only. Give KEY as an argument, or as --key-file FILE\n" +
		"(a command line is readable by other local users).",
	Subcommands: []*ucli.Command{
		{Name: "list", Usage: "every key and on how many hosts it is installed and primary", Flags: outputFlags,
			Action: func(c *ucli.Context) error {
				if c.NArg() != 0 {
					return usage(c, "no arguments")
				}
				return keyringRun(c, (*api.Client).Keyring)
			}},
		keyringOpCommand("install", "add KEY to every host's keyring (first step of a rotation)", (*api.Client).InstallKey),
		keyringOpCommand("use", "encrypt with KEY from now on (it must be installed on every host)", (*api.Client).UseKey),
		keyringOpCommand("remove", "drop KEY from every host's keyring (not while it is a primary key)", (*api.Client).RemoveKey),
	},
}

var keyFileFlag = &ucli.StringFlag{Name: "key-file", Usage: "read KEY from this file instead of the command line"}

func keyringOpCommand(name, usageText string, op func(*api.Client, context.Context, string) (api.KeyringResponse, error)) *ucli.Command {
	return &ucli.Command{Name: name, Usage: usageText, ArgsUsage: "KEY", Flags: []ucli.Flag{keyFileFlag, outputFlag, jsonFlag},
		Action: func(c *ucli.Context) error {
			key, err := keyArg(c)
			if err != nil {
				return err
			}
			return keyringRun(c, func(cl *api.Client, ctx context.Context) (api.KeyringResponse, error) {
				return op(cl, ctx, key)
			})
		}}
}

// keyArg takes KEY from the argument or from --key-file, exactly one.
func keyArg(c *ucli.Context) (string, error) {
	file := c.String("key-file")
	switch {
	case file != "" && c.NArg() == 0:
		b, err := os.ReadFile(file)
		if err != nil {
			return "", ucli.Exit("error: --key-file: "+err.Error(), exitUsage)
		}
		return strings.TrimSpace(string(b)), nil
	case file == "" && c.NArg() == 1:
		return c.Args().First(), nil
	}
	return "", usage(c, "KEY or --key-file FILE")
}

// keyringRun calls meshd and prints the per-key table, the hosts that
// failed (exit 1) and the members that were not asked.
func keyringRun(c *ucli.Context, call func(*api.Client, context.Context) (api.KeyringResponse, error)) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	resp, err := call(cl, c.Context)
	if err != nil {
		return err
	}
	if ok, err := printed(c, resp); err != nil {
		return err
	} else if !ok {
		printKeyring(c, resp)
	}
	if len(resp.NotAsked) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "warning: not alive, not asked: %s (they miss this change)\n", strings.Join(resp.NotAsked, ", "))
	}
	if resp.Failed > 0 {
		var failed []string
		for _, h := range resp.Hosts {
			if h.Error != "" {
				failed = append(failed, h.Host+": "+h.Error)
			}
		}
		return ucli.Exit(fmt.Sprintf("error: keyring %s failed on %d of %d hosts:\n  %s", resp.Op, resp.Failed, resp.Asked,
			strings.Join(failed, "\n  ")), exitFailed)
	}
	return nil
}

func printKeyring(c *ucli.Context, r api.KeyringResponse) {
	w := c.App.Writer
	ok := r.Asked - r.Failed
	if r.Op != "list" {
		fmt.Fprintf(w, "%s %s: done on %d of %d hosts\n", r.Op, r.Key, ok, r.Asked)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tINSTALLED\tPRIMARY")
	for _, k := range r.Keys {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\n", k.Key, k.Installed, ok, k.Primary, ok)
	}
	_ = tw.Flush()
	if r.Op == "list" {
		fmt.Fprintf(w, "%d of %d hosts answered\n", ok, r.Asked)
	}
}
