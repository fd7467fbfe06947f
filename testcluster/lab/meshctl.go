package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// MeshdAPIPort is where meshd serves its API (its --api-port default).
const MeshdAPIPort = 7400

// CtlResult is one meshctl run as an operator sees it: exit code, output and
// how long it took.
type CtlResult struct {
	Args           []string
	Code           int
	Stdout, Stderr string
	Took           time.Duration
}

func (r CtlResult) String() string {
	return fmt.Sprintf("meshctl %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Meshctl runs the meshctl binary bin from the root namespace against the
// meshd API of host h, over the lab's management network, the way an
// operator's workstation would: HTTPS, meshd verified with the mesh CA,
// the management token. A
// command that could not run at all has code -1 and says why in Stderr.
func Meshctl(ctx context.Context, bin string, h *Host, args ...string) CtlResult {
	full := []string{"--addr", fmt.Sprintf("%s:%d", h.MgmtIP, MeshdAPIPort)}
	if h.CACert != "" {
		full = append(full, "--cacert", h.CACert)
	}
	if h.TokenFile != "" {
		full = append(full, "--token-file", h.TokenFile)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := CtlResult{Args: args, Stdout: out.String(), Stderr: errOut.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		r.Code = -1
		r.Stderr += "\n(run: " + err.Error() + ")"
	}
	return r
}
