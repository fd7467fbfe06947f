// Command meshd is the hostmesh agent; see packages daemon and node.
package main

import (
	"os"

	"github.com/hostmesh/hostmesh/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args, os.Stdout, os.Stderr))
}
