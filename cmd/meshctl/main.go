// Command meshctl drives a hostmesh; see package cli.
package main

import (
	"os"

	"github.com/hostmesh/hostmesh/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdout, os.Stderr))
}
