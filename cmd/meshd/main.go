// Command meshd is the hostmesh agent; see packages cli and node.
package main

import (
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/cli"
)

func main() {
	if err := cli.MeshdApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		if ec, ok := err.(ucli.ExitCoder); ok {
			if msg := ec.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
