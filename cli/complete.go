package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// Shell completion (urfave/cli's protocol: `meshctl migrate
// --generate-bash-completion` prints the words that may come next). Names
// come from the meshd that MESH_ADDR (or --addr) names, within a second;
// a meshd that does not answer completes nothing, and never an error.

const completeTimeout = time.Second

// completeNames prints names as completions once meshd answers.
func completeNames(list func(context.Context, *api.Client) ([]string, error)) ucli.BashCompleteFunc {
	return func(c *ucli.Context) {
		// A word being typed that starts with "-" completes flags, as
		// urfave/cli's default does.
		if n := len(os.Args); n > 2 && os.Args[n-1] == "--generate-bash-completion" && strings.HasPrefix(os.Args[n-2], "-") {
			ucli.DefaultCompleteWithFlags(c.Command)(c)
			return
		}
		if c.NArg() > 0 {
			return // the one argument is given
		}
		cl, err := newClient(c)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(c.Context, completeTimeout)
		defer cancel()
		names, err := list(ctx, cl)
		if err != nil {
			return
		}
		for _, n := range names {
			fmt.Fprintln(c.App.Writer, n)
		}
	}
}

var completeVMs = completeNames(func(ctx context.Context, cl *api.Client) ([]string, error) {
	vms, err := cl.VMs(ctx)
	var names []string
	for _, v := range vms {
		names = append(names, v.Name)
	}
	return names, err
})

var completeHosts = completeNames(func(ctx context.Context, cl *api.Client) ([]string, error) {
	hs, err := cl.Hosts(ctx)
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return names, err
})

var completeClusters = completeNames(func(ctx context.Context, cl *api.Client) ([]string, error) {
	cs, err := cl.Clusters(ctx)
	var names []string
	for _, x := range cs {
		names = append(names, x.Name)
	}
	return names, err
})

// completeMigrations offers the migrations that can still be cancelled.
var completeMigrations = completeNames(func(ctx context.Context, cl *api.Client) ([]string, error) {
	ms, err := cl.Migrations(ctx)
	var ids []string
	for _, m := range ms {
		if !m.State.Final() {
			ids = append(ids, m.ID)
		}
	}
	return ids, err
})

// completeSubcommands lists a command's subcommands (urfave's default
// lists them only for the app itself).
func completeSubcommands(c *ucli.Context) {
	for _, sub := range c.Command.Subcommands {
		if !sub.Hidden && sub.Name != "help" {
			fmt.Fprintln(c.App.Writer, sub.Name)
		}
	}
}
