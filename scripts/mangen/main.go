// Command mangen writes the man pages meshd.8 and meshctl.1 from the
// command-line definitions themselves (urfave/cli's ToMan), so they never
// drift from --help. make package runs it.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/cli"
	"github.com/hostmesh/hostmesh/daemon"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mangen DIR (writes DIR/meshd.8, DIR/meshctl.1)")
		os.Exit(2)
	}
	for _, p := range []struct {
		app     *ucli.App
		section int
	}{{daemon.App(io.Discard, io.Discard), 8}, {cli.App(io.Discard, io.Discard), 1}} {
		app := p.app
		page, err := app.ToManWithSection(p.section)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mangen: %s: %v\n", app.Name, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(os.Args[1], fmt.Sprintf("%s.%d", app.Name, p.section)), []byte(page), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "mangen: %v\n", err)
			os.Exit(1)
		}
	}
}
