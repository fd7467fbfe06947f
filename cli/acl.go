package cli

import (
	"fmt"
	"io"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// ACLCommand manages the mesh's tokens, as `consul acl` does: bootstrap
// once for the management token, then create a token per user or tool
// with the least policy it needs (read lists; operator migrates, cancels,
// drains and activates; admin changes clusters, makes hosts leave, rotates
// the keyring and manages tokens).
var ACLCommand = &ucli.Command{
	Name:  "acl",
	Usage: "bootstrap the ACLs and manage tokens",
	Subcommands: []*ucli.Command{
		{Name: "bootstrap", Usage: "create the management token (once per mesh; needs no token); prints its secret",
			Flags: outputFlags,
			Action: func(c *ucli.Context) error {
				if c.NArg() != 0 {
					return usage(c, "no arguments")
				}
				cl, err := newClient(c)
				if err != nil {
					return err
				}
				t, err := cl.ACLBootstrap(c.Context)
				if err != nil {
					return err
				}
				return printSecretToken(c, t)
			}},
		{Name: "token", Usage: "create, list and delete tokens (admin)",
			Subcommands: []*ucli.Command{
				{Name: "create", Usage: "create a token; prints its secret, which the mesh does not keep",
					Flags: []ucli.Flag{
						&ucli.StringFlag{Name: "name", Required: true, Usage: "the token's name, recorded as the actor of its writes (token:NAME)"},
						&ucli.StringFlag{Name: "policy", Required: true, Usage: "read, operator or admin"},
						outputFlag, jsonFlag},
					Action: func(c *ucli.Context) error {
						if c.NArg() != 0 {
							return usage(c, "no arguments")
						}
						cl, err := newClient(c)
						if err != nil {
							return err
						}
						t, err := cl.ACLTokenCreate(c.Context, api.ACLTokenRequest{Name: c.String("name"), Policy: c.String("policy")})
						if err != nil {
							return err
						}
						return printSecretToken(c, t)
					}},
				{Name: "list", Usage: "every token: accessor id, name, policy, created, by whom (never secrets)",
					Flags: outputFlags,
					Action: listing((*api.Client).ACLTokens, func(w io.Writer, ts []api.ACLToken) {
						fmt.Fprintln(w, "ACCESSOR ID\tNAME\tPOLICY\tCREATED\tCREATED BY")
						for _, t := range ts {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.AccessorID, t.Name, t.Policy, t.Created.Format(time.RFC3339), t.CreatedBy)
						}
					})},
				{Name: "delete", Usage: "delete a token by accessor id or name (not the last admin token)", ArgsUsage: "ACCESSOR-ID|NAME",
					Flags: outputFlags,
					Action: func(c *ucli.Context) error {
						if c.NArg() != 1 {
							return usage(c, "ACCESSOR-ID or NAME")
						}
						cl, err := newClient(c)
						if err != nil {
							return err
						}
						t, err := cl.ACLTokenDelete(c.Context, c.Args().First())
						if err != nil {
							return err
						}
						if ok, err := printed(c, t); ok || err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "deleted token %s (%s, policy %s)\n", t.Name, t.AccessorID, t.Policy)
						return nil
					}},
			}},
	},
}

// printSecretToken prints a token that was just made, with its secret.
func printSecretToken(c *ucli.Context, t api.ACLToken) error {
	if ok, err := printed(c, t); ok || err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "AccessorID: %s\nSecretID:   %s\nName:       %s\nPolicy:     %s\nCreated:    %s\n",
		t.AccessorID, t.SecretID, t.Name, t.Policy, t.Created.Format(time.RFC3339))
	fmt.Fprintln(c.App.ErrWriter, "keep the SecretID: the mesh stores only its hash. Use it with MESH_TOKEN=... or --token-file FILE")
	return nil
}
