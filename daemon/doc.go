// Package daemon is meshd's command line: its flags, how they become a
// node.Config, the hypervisor it opens and what it does on signals. It is
// apart from package cli (meshctl) so that meshctl links neither Raft,
// memberlist nor libvirt.
package daemon

import (
	"errors"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"
)

// Exit codes of meshd, as meshctl's: 1 failed, 2 bad usage or configuration.
const (
	exitFailed = 1
	exitUsage  = 2
)

// Main runs meshd with args and returns the process exit code, printing
// errors to errOut.
func Main(args []string, out, errOut io.Writer) int {
	err := App(out, errOut).Run(args)
	if err == nil {
		return 0
	}
	var ec ucli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(errOut, msg)
		}
		return ec.ExitCode()
	}
	// urfave/cli's own errors (an unknown flag) are usage errors.
	fmt.Fprintln(errOut, "error:", err)
	return exitUsage
}
