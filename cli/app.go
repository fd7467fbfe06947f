// Package cli is meshctl: one file per noun, each exporting its command, in
// the way of containerd's ctr. Tables go through text/tabwriter; -o json
// and -o yaml print what the API returned for machines.
package cli

import (
	"context"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/version"
)

// App builds the meshctl application.
func App(out, errOut io.Writer) *ucli.App {
	app := &ucli.App{
		Name:                 "meshctl",
		EnableBashCompletion: true,
		Usage:                "drive a hostmesh: hosts, VMs, live migrations and drains",
		Description:          exitCodesHelp,
		Version:              version.Get().String(),
		Writer:               out,
		ErrWriter:            errOut,
		Flags:                connFlags,
		Commands: []*ucli.Command{
			HostsCommand, VMsCommand, VMCommand, StatusCommand, MembersCommand, RaftCommand,
			MigrateCommand, MigrationsCommand, CancelCommand,
			DrainCommand, ActivateCommand, LeaveCommand, ClusterCommand, ClustersCommand, BalanceCommand, AffinityCommand, EventsCommand, KeygenCommand, KeyringCommand, TLSCommand, ACLCommand,
		},
		// Errors are turned into exit codes by Run, not inside urfave/cli,
		// so tests can run commands in-process.
		ExitErrHandler: func(*ucli.Context, error) {},
		OnUsageError:   usageError,
	}
	for _, cmd := range app.Commands {
		conventions(cmd)
	}
	return app
}

// conventions gives every command the same behaviour: a bad flag exits 2,
// a bad -o exits 2 before meshd is asked, names complete.
func conventions(cmd *ucli.Command) {
	cmd.OnUsageError = usageError
	for _, f := range cmd.Flags {
		if f == outputFlag && cmd.Before == nil {
			cmd.Before = func(c *ucli.Context) error { _, err := format(c); return err }
		}
	}
	if cmd.BashComplete == nil && len(cmd.Subcommands) > 0 {
		cmd.BashComplete = completeSubcommands
	}
	for _, sub := range cmd.Subcommands {
		conventions(sub)
	}
}

// usageError: an unknown flag or a flag's bad value is a usage error.
func usageError(c *ucli.Context, err error, _ bool) error {
	return ucli.Exit("error: "+err.Error()+" (meshctl --help lists the commands, meshctl COMMAND --help their flags)", exitUsage)
}

// Run runs meshctl with args and returns the process exit code, printing
// errors to errOut.
func Run(args []string, out, errOut io.Writer) int {
	return RunContext(context.Background(), args, out, errOut)
}

// RunContext is Run ended by ctx: a command that follows (events -f,
// --wait) returns when ctx is done, as it does on Ctrl-C.
func RunContext(ctx context.Context, args []string, out, errOut io.Writer) int {
	app := App(out, errOut)
	// An unknown command is a usage error (2): urfave/cli's own answer is
	// exit 3, which meshctl keeps for an unreachable meshd.
	var unknown string
	app.CommandNotFound = func(_ *ucli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, permute(app, args))
	if err == nil && unknown != "" {
		err = ucli.Exit(fmt.Sprintf("error: unknown command %q (meshctl --help lists them)", unknown), exitUsage)
	}
	if err == nil {
		return 0
	}
	err = exitErr(err)
	if ec, ok := err.(ucli.ExitCoder); ok {
		fmt.Fprintln(errOut, ec.Error())
		return ec.ExitCode()
	}
	fmt.Fprintln(errOut, "error:", err)
	return 1
}
