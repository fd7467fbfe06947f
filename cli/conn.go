package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
)

// connFlags say how meshctl reaches and authenticates to meshd; each has
// the environment variable a user sets once.
var connFlags = []ucli.Flag{
	&ucli.StringFlag{Name: "addr", Value: "127.0.0.1:7400", EnvVars: []string{"MESH_ADDR"},
		Usage: "API address of any meshd of the mesh: HOST:PORT (HTTPS), or http://HOST:PORT for a meshd --dev"},
	&ucli.StringFlag{Name: "cacert", EnvVars: []string{"MESH_CACERT"}, Usage: "the mesh's CA certificate, to verify meshd"},
	&ucli.StringFlag{Name: "client-cert", EnvVars: []string{"MESH_CLIENT_CERT"}, Usage: "client certificate (optional)"},
	&ucli.StringFlag{Name: "client-key", EnvVars: []string{"MESH_CLIENT_KEY"}, Usage: "key of --client-cert"},
	&ucli.StringFlag{Name: "token", EnvVars: []string{"MESH_TOKEN"}, Usage: "API token, sent as Authorization: Bearer"},
	&ucli.StringFlag{Name: "token-file", EnvVars: []string{"MESH_TOKEN_FILE"}, Usage: "file holding the API token"},
	&ucli.DurationFlag{Name: "timeout", Value: defaultTimeout, EnvVars: []string{"MESH_TIMEOUT"},
		Usage: "how long one request may wait for meshd (a write waits for Raft: keep it above 10s); --wait adds its blocking reads' wait"},
}

// defaultTimeout covers a write's Raft apply (10 s at most) through a
// follower, and no more: a blackholed address is reported after it.
const defaultTimeout = 15 * time.Second

// rootContext is the context of meshctl itself, whose flags are the
// global ones: `leave --timeout` is the drain's, `meshctl --timeout` the
// request's.
func rootContext(c *ucli.Context) *ucli.Context {
	root := c
	for _, x := range c.Lineage() {
		if x.Command != nil {
			root = x
		}
	}
	return root
}

// newClient builds the API client from the connection flags.
func newClient(c *ucli.Context) (*api.Client, error) {
	timeout := defaultTimeout
	if r := rootContext(c); r.IsSet("timeout") {
		if timeout = r.Duration("timeout"); timeout <= 0 {
			return nil, ucli.Exit(fmt.Sprintf("error: --timeout %s: must be positive", timeout), exitUsage)
		}
	}
	cl, err := api.NewClient(api.Config{Addr: c.String("addr"), CAFile: c.String("cacert"),
		CertFile: c.String("client-cert"), KeyFile: c.String("client-key"),
		Token: c.String("token"), TokenFile: c.String("token-file"), Timeout: timeout})
	if err != nil {
		return nil, ucli.Exit("error: "+err.Error(), exitUsage)
	}
	return cl, nil
}

// exitErr maps an error to the exit code scripts can branch on.
func exitErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Kind {
		case api.KindBadRequest, api.KindNotFound:
			return ucli.Exit("error: "+ae.Message, exitUsage)
		case api.KindNoLeader:
			return ucli.Exit("error: "+ae.Message, exitUnreachable)
		}
		return ucli.Exit("error: "+ae.Message, exitFailed)
	}
	var ec ucli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	var ce *api.ConnError
	if errors.As(err, &ce) {
		msg := "error: " + err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg += " (no answer within --timeout)"
		}
		return ucli.Exit(msg, exitUnreachable)
	}
	return ucli.Exit("error: "+err.Error(), exitFailed)
}

// usage answers a wrong argument count with the command's help.
func usage(c *ucli.Context, want string) error {
	_ = ucli.ShowSubcommandHelp(c)
	return ucli.Exit("error: "+c.Command.Name+" needs "+want, exitUsage)
}
