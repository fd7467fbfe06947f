// Package cli is meshctl: one file per noun, each exporting its command, in
// the way of containerd's ctr. Tables go through text/tabwriter; --json
// prints what the API returned for machines.
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
	return &ucli.App{
		Name:                 "meshctl",
		EnableBashCompletion: true,
		Usage:                "drive a hostmesh: hosts, VMs, live migrations and drains",
		Version:              version.Get().String(),
		Writer:               out,
		ErrWriter:            errOut,
		Flags:                connFlags,
		Commands: []*ucli.Command{
			HostsCommand, VMsCommand, VMCommand, StatusCommand,
			MigrateCommand, MigrationsCommand, CancelCommand,
			DrainCommand, ActivateCommand, LeaveCommand, ClusterCommand, AffinityCommand, EventsCommand, KeygenCommand, KeyringCommand, TLSCommand, ACLCommand,
		},
		// Errors are turned into exit codes by Run, not inside urfave/cli,
		// so tests can run commands in-process.
		ExitErrHandler: func(*ucli.Context, error) {},
	}
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
	err := app.RunContext(ctx, permute(app, args))
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

var jsonFlag = &ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
